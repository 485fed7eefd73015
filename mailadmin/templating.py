"""Mail templates rendered with Django's template engine, and the function the CRM calls.

Templates are strings edited in the portal, so they get their own engines: no template
loaders (``include``/``extends`` cannot reach files), only the built-in tags and filters,
HTML escaped and text not. Previews use separate engines whose missing variables render as a
visible marker; a real message renders them empty, as Django always does.

The CRM's three lines::

    message = template_message(name="welcome", language=member.language,
                               context={"member": member}, to=[member.email])
    message.send()
"""

from dataclasses import dataclass, field
from email.headerregistry import Address

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Node, NodeList, Variable
from django.template.defaulttags import (
    CsrfTokenNode,
    DebugNode,
    ForNode,
    IfNode,
    LoadNode,
    URLNode,
    WithNode,
)
from django.template.loader_tags import BlockNode, ExtendsNode, IncludeNode
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mailadmin.models import MailTemplate
from smtpconfig.exceptions import MailadminError
from smtpconfig.unsubscribe import unsubscribe_headers

MISSING_MARKER = "«missing: %s»"

# The fields of a template that are templates themselves, in the order they are checked.
TEMPLATE_FIELDS = ("subject", "body_text", "body_html")

# Tags that would leak the context (debug), need files or URLs the mail does not have, or
# have no meaning in a mail; refused at save time rather than failing at send time.
_REFUSED_TAGS = {
    DebugNode: "debug",
    IncludeNode: "include",
    ExtendsNode: "extends",
    BlockNode: "block",
    URLNode: "url",
    CsrfTokenNode: "csrf_token",
    LoadNode: "load",
}


def _engine(*, autoescape: bool, preview: bool) -> Engine:
    return Engine(
        debug=True,  # syntax errors then carry their line
        loaders=[],
        libraries={},
        autoescape=autoescape,
        string_if_invalid=MISSING_MARKER if preview else "",
    )


_TEXT_ENGINE = _engine(autoescape=False, preview=False)
_HTML_ENGINE = _engine(autoescape=True, preview=False)
_TEXT_PREVIEW_ENGINE = _engine(autoescape=False, preview=True)
_HTML_PREVIEW_ENGINE = _engine(autoescape=True, preview=True)


class TemplateNotFound(MailadminError, LookupError):
    """No template has this name, in any language."""

    def __init__(self, message: str, *, name: str):
        super().__init__(message)
        self.name = name


class TemplateRenderError(MailadminError, ValueError):
    """A stored template does not compile any more (edited outside the portal)."""

    def __init__(self, message: str, *, template: MailTemplate, field_name: str):
        super().__init__(message)
        self.template = template
        self.field_name = field_name


class BulkRecipientsError(MailadminError, ValueError):
    """A bulk template addressed to several recipients in one message."""

    def __init__(self, message: str, *, template: MailTemplate):
        super().__init__(message)
        self.template = template


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class TemplateVariables:
    """The context a template reads: dotted paths of single values, and of lists it loops over."""

    values: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)


def template_source_check(*, source: str) -> None:
    """Raise ``ValidationError`` naming the line and the problem if ``source`` cannot render."""
    try:
        compiled = _TEXT_ENGINE.from_string(source)
    except TemplateSyntaxError as error:
        line = getattr(error, "template_debug", {}).get("line", 1)
        raise ValidationError(
            _("Line %(line)s: %(problem)s"),
            code="template_syntax",
            params={"line": line, "problem": str(error).strip()},
        ) from None
    for node in compiled.nodelist.get_nodes_by_type(Node):
        tag = _REFUSED_TAGS.get(type(node))
        if tag is not None:
            raise ValidationError(
                _("Line %(line)s: the tag {%% %(tag)s %%} cannot be used in a mail template."),
                code="template_tag",
                params={"line": _line_of(node), "tag": tag},
            )


def _line_of(node: Node) -> int:
    token = getattr(node, "token", None)
    return getattr(token, "lineno", None) or 1


def _compile(engine: Engine, template: MailTemplate, field_name: str):
    try:
        return engine.from_string(getattr(template, field_name))
    except TemplateSyntaxError as error:
        raise TemplateRenderError(
            gettext("The template %(template)s cannot be rendered (%(field)s): %(error)s")
            % {"template": template, "field": field_name, "error": error},
            template=template,
            field_name=field_name,
        ) from error


def _render(engine: Engine, template: MailTemplate, field_name: str, context: dict) -> str:
    # A Context escapes by default whatever the engine says: pass the engine's choice on.
    compiled = _compile(engine, template, field_name)
    rendered = compiled.render(Context(context, autoescape=engine.autoescape))
    # A plain string, not the engine's "safe" one: a page showing the preview must escape it.
    return str.__str__(rendered)


def template_render(
    *, template: MailTemplate, context: dict, preview: bool = False
) -> RenderedMail:
    """Render the subject, the text and the HTML of ``template`` with ``context``.

    The subject is one line (a line break would be a header injection). ``preview`` marks
    missing variables visibly instead of leaving them empty.
    """
    text_engine = _TEXT_PREVIEW_ENGINE if preview else _TEXT_ENGINE
    html_engine = _HTML_PREVIEW_ENGINE if preview else _HTML_ENGINE
    with translation.override(template.language):
        subject = _render(text_engine, template, "subject", context)
        text = _render(text_engine, template, "body_text", context)
        html = _render(html_engine, template, "body_html", context) if template.body_html else ""
    return RenderedMail(subject=" ".join(subject.split()), text=text, html=html)


def template_find(*, name: str, language: str | None = None) -> MailTemplate:
    """The template ``name`` in ``language``, else in ``settings.LANGUAGE_CODE``, else any.

    ``language`` may be a full code (``fr-ch``): its first part is used.
    """
    candidates = list(MailTemplate.objects.filter(name=name).order_by("language"))
    if not candidates:
        raise TemplateNotFound(
            gettext("No mail template is named “%(name)s”.") % {"name": name}, name=name
        )
    by_language = {template.language: template for template in candidates}
    for wanted in (language, settings.LANGUAGE_CODE):
        if wanted and wanted.split("-")[0].lower() in by_language:
            return by_language[wanted.split("-")[0].lower()]
    return candidates[0]


def template_sender(*, template: MailTemplate) -> str:
    """The template's From as a header value, or "" when the template leaves it to routing."""
    if not template.sender_email:
        return ""
    return str(Address(display_name=template.sender_name, addr_spec=template.sender_email))


def template_email(
    *,
    template: MailTemplate,
    context: dict,
    to: list[str],
    cc: list[str] | tuple = (),
    bcc: list[str] | tuple = (),
) -> EmailMultiAlternatives:
    """Render ``template`` into a message ready to send, with the template's From and Reply-To.

    An empty sender means ``DEFAULT_FROM_EMAIL``; routing then picks the server from it.
    A bulk template gets the one-click unsubscribe headers of its recipient, so it is sent
    to one address per message (``ValueError`` otherwise).
    """
    headers = {}
    if template.is_bulk:
        addresses = [*to, *cc, *bcc]
        if len(addresses) != 1:
            raise BulkRecipientsError(
                gettext(
                    "The bulk template %(template)s carries a personal unsubscribe link: "
                    "send it to one address per message, not %(count)d."
                )
                % {"template": template, "count": len(addresses)},
                template=template,
            )
        headers = unsubscribe_headers(address=addresses[0])
    rendered = template_render(template=template, context=context)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=template_sender(template=template) or None,
        to=list(to),
        cc=list(cc),
        bcc=list(bcc),
        reply_to=[template.reply_to] if template.reply_to else [],
        headers=headers,
    )
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    return message


def template_message(
    *,
    name: str,
    language: str | None = None,
    context: dict,
    to: list[str],
    cc: list[str] | tuple = (),
    bcc: list[str] | tuple = (),
) -> EmailMultiAlternatives:
    """The public API for the CRM: the template ``name`` rendered into a message to send.

    The language falls back to ``settings.LANGUAGE_CODE``, then to any language the template
    exists in. Raises ``TemplateNotFound`` (a ``LookupError``) when no such template exists.
    """
    template = template_find(name=name, language=language)
    return template_email(template=template, context=context, to=to, cc=cc, bcc=bcc)


def template_variables(*, template: MailTemplate) -> TemplateVariables:
    """The context paths the template reads, found by parsing it (loop variables excluded)."""
    values: dict[str, None] = {}
    lists: dict[str, None] = {}
    for field_name in TEMPLATE_FIELDS:
        source = getattr(template, field_name)
        try:
            compiled = _TEXT_ENGINE.from_string(source)
        except TemplateSyntaxError:
            continue
        _collect(compiled.nodelist, frozenset(), values, lists)
    only_values = [path for path in values if path not in lists]
    return TemplateVariables(values=only_values, lists=list(lists))


def _collect(nodelist: NodeList, bound: frozenset, values: dict, lists: dict) -> None:
    for node in nodelist:
        inner_bound = bound
        if isinstance(node, ForNode):
            _add_path(node.sequence, bound, lists)
            inner_bound = bound | set(node.loopvars) | {"forloop"}
        elif isinstance(node, WithNode):
            for expression in node.extra_context.values():
                _add_path(expression, bound, values)
            inner_bound = bound | set(node.extra_context)
        elif isinstance(node, IfNode):
            for condition, _nodelist in node.conditions_nodelists:
                for expression in _condition_expressions(condition):
                    _add_path(expression, bound, values)
        else:
            for expression in _node_expressions(node):
                _add_path(expression, bound, values)
        if isinstance(node, IfNode):
            children = [nodelist for _condition, nodelist in node.conditions_nodelists]
        else:
            children = [getattr(node, name, None) for name in node.child_nodelists]
        for child in children:
            if child:
                _collect(child, inner_bound, values, lists)


def _condition_expressions(condition):
    if condition is None:
        return
    if isinstance(getattr(condition, "value", None), FilterExpression):
        yield condition.value
    for part in ("first", "second"):
        yield from _condition_expressions(getattr(condition, part, None))


def _node_expressions(node: Node):
    for value in vars(node).values():
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, FilterExpression):
            yield value
        elif isinstance(value, list | tuple):
            yield from (item for item in value if isinstance(item, FilterExpression))


def _add_path(expression: FilterExpression, bound: frozenset, found: dict) -> None:
    variables = [expression.var]
    for _function, arguments in expression.filters:
        variables.extend(argument for is_lookup, argument in arguments if is_lookup)
    for variable in variables:
        is_context_path = isinstance(variable, Variable) and bool(variable.lookups)
        if is_context_path and variable.lookups[0] not in bound:
            found[".".join(variable.lookups)] = None


def context_from_paths(values: dict[str, object]) -> dict:
    """Nest ``{"member.first_name": "Anne"}`` into ``{"member": {"first_name": "Anne"}}``."""
    context: dict = {}
    for path, value in sorted(values.items(), key=lambda item: item[0].count(".")):
        *parents, last = path.split(".")
        target = context
        for parent in parents:
            if not isinstance(target.get(parent), dict):
                target[parent] = {}
            target = target[parent]
        if not isinstance(target.get(last), dict):
            target[last] = value
    return context


def context_value_at(context: dict, path: str):
    """The value at dotted ``path`` in a nested dict, or ``None``."""
    current = context
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current
