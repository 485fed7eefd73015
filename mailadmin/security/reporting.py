"""Error reports (the DEBUG page, mailed reports) that never show a secret."""

import re

from django.views.debug import SafeExceptionReporterFilter

# Names of POST fields and local variables whose values are secrets.
SECRET_NAMES = re.compile(
    r"pass|secret|token|credential|api_?key|private_?key|signature|otp", re.IGNORECASE
)
# Modules whose frames hold secrets under innocent names (smtplib keeps the AUTH exchange,
# password included, in `initial_response` and `response`): all their variables are masked.
SECRET_BEARING_MODULES = (
    "smtplib",
    "django.core.mail.backends.smtp",
    "anymail.",
    "smtpconfig.transport",
    "smtpconfig.crypto",
    "smtpconfig.oauth",
    "smtpconfig.xoauth2",
)


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Mask what looks like a secret even where no view or function declared it sensitive.

    Django masks only what ``sensitive_post_parameters``/``sensitive_variables`` name; the
    SMTP password also travels through smtplib's and the mail backends' frames, which
    cannot be decorated.
    """

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if request is None or not parameters:
            return parameters
        cleansed = parameters.copy()
        for name in cleansed:
            if SECRET_NAMES.search(name):
                cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        module = tb_frame.f_globals.get("__name__", "")
        if module.startswith(SECRET_BEARING_MODULES):
            return [(name, self.cleansed_substitute) for name, _value in variables]
        return [
            (name, self.cleansed_substitute if SECRET_NAMES.search(name) else value)
            for name, value in variables
        ]
