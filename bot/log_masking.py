"""Logs never hold unmasked personal data: a filter on each handler masks every record it writes."""

from __future__ import annotations

import logging

from storage.masking import mask

MASKED_FLAG = "personal_data_masked"


class PersonalDataFilter(logging.Filter):
    """Masks phone numbers, e-mail, ID and card numbers in a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, MASKED_FLAG, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format must not cost the log line
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        setattr(record, MASKED_FLAG, True)
        return True


def mask_logs(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
            handler.addFilter(PersonalDataFilter())
