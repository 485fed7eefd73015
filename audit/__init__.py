"""The audit trail: the bottom layer, written by every app's services, importing none of them."""
