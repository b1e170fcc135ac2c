"""Bot API methods on messages: send, edit, delete, answer a button press, serve a file."""

from __future__ import annotations

from tests.fakes.telegram_checks import check_reply_markup, plain_text
from tests.fakes.telegram_params import (
    chat_id_param,
    int_param,
    reply_to_param,
    required_int_param,
    str_param,
)
from tests.fakes.telegram_state import JSON, ApiError, SentMessage, ServerState, Upload

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
_NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup "
                 "are exactly the same as a current content and reply markup of the message")


class MessageMethods(ServerState):
    """Sending, editing and deleting messages, answering button presses, serving files."""

    async def _api_send_message(self, params: JSON) -> JSON:
        chat_id, text = chat_id_param(params), str_param(params, "text") or ""
        self._writable(chat_id)
        plain = self._checked_text(text, str_param(params, "parse_mode"), MESSAGE_LIMIT, "message text")
        markup = check_reply_markup(params.get("reply_markup"))
        message = self.outgoing(chat_id, {"text": plain}, markup)
        self._record("sendMessage", params, message, text=text, plain=plain)
        return message

    async def _api_send_document(self, params: JSON) -> JSON:
        chat_id, document = chat_id_param(params), params.get("document")
        self._writable(chat_id)
        if not isinstance(document, Upload | str) or not document:
            raise ApiError(400, "Bad Request: there is no document in the request")
        caption = str_param(params, "caption")
        parse_mode = str_param(params, "parse_mode")
        plain = self._checked_text(caption, parse_mode, CAPTION_LIMIT, "message caption") if caption else None
        content: JSON = {"document": self._document(document)}
        if plain:
            content["caption"] = plain
        message = self.outgoing(chat_id, content, check_reply_markup(params.get("reply_markup")))
        upload = document if isinstance(document, Upload) else None
        self._record("sendDocument", params, message, text=caption, plain=plain,
                     document_name=upload.filename if upload else None,
                     document_bytes=upload.data if upload else None)
        return message

    async def _api_edit_message_text(self, params: JSON) -> JSON | bool:
        if params.get("inline_message_id"):
            return True
        chat_id, stored = self._editable(params)
        if "text" not in stored:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = str_param(params, "text") or ""
        plain = self._checked_text(text, str_param(params, "parse_mode"), MESSAGE_LIMIT, "message text")
        markup = check_reply_markup(params.get("reply_markup"))
        return self._edit("editMessageText", params, chat_id, stored, {"text": plain}, markup, text)

    async def _api_edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        if params.get("inline_message_id"):
            return True
        chat_id, stored = self._editable(params)
        markup = check_reply_markup(params.get("reply_markup"))
        return self._edit("editMessageReplyMarkup", params, chat_id, stored, {}, markup, stored.get("text"))

    async def _api_answer_callback_query(self, params: JSON) -> bool:
        query_id = str_param(params, "callback_query_id") or ""
        if query_id not in self.open_queries:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID "
                                "is invalid")
        self.open_queries.discard(query_id)
        return True

    async def _api_send_chat_action(self, params: JSON) -> bool:
        chat_id_param(params)
        if not str_param(params, "action"):
            raise ApiError(400, "Bad Request: action is empty")
        return True

    async def _api_delete_message(self, params: JSON) -> bool:
        key = (chat_id_param(params), required_int_param(params, "message_id"))
        if self.messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _api_get_file(self, params: JSON) -> JSON:
        file_id = str_param(params, "file_id") or ""
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data),
                "file_path": path}

    def _checked_text(self, text: str, parse_mode: str | None, limit: int, what: str) -> str:
        plain = plain_text(text, parse_mode)
        if not plain.strip():
            raise ApiError(400, f"Bad Request: {what} is empty")
        if len(plain) > limit:
            raise ApiError(400, f"Bad Request: {what.replace(' text', '')} is too long")
        return plain

    def _editable(self, params: JSON) -> tuple[int | str, JSON]:
        chat_id = chat_id_param(params)
        self._writable(chat_id)
        stored = self.messages.get((chat_id, required_int_param(params, "message_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if stored["from"]["id"] != self.bot["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat_id, stored

    def _edit(self, method: str, params: JSON, chat_id: int | str, stored: JSON, content: JSON,
              markup: JSON | None, text: str | None) -> JSON:
        inline = markup if markup and "inline_keyboard" in markup else None
        edited = {key: value for key, value in stored.items() if key != "reply_markup"}
        edited.update(content, edit_date=int(self.clock()), **({"reply_markup": inline} if inline else {}))
        if edited.get("text") == stored.get("text") and inline == stored.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        self.messages[(chat_id, stored["message_id"])] = edited
        self._record(method, params, edited, text=text, plain=edited.get("text"))
        return edited

    def _document(self, document: Upload | str) -> JSON:
        if isinstance(document, str):
            return {"file_id": document, "file_unique_id": f"u{document}"}
        file_id = f"doc{len(self.files)}"
        self.files[file_id] = (f"documents/{document.filename}", document.data)
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": document.filename,
                "mime_type": document.content_type, "file_size": len(document.data)}

    def _record(self, method: str, params: JSON, message: JSON, *, text: str | None, plain: str | None,
                document_name: str | None = None, document_bytes: bytes | None = None) -> None:
        preview = params.get("link_preview_options")
        self.sent.append(SentMessage(
            method, chat_id_param(params), int(message["message_id"]), self.clock(), text, plain,
            str_param(params, "parse_mode"), check_reply_markup(params.get("reply_markup")),
            reply_to_param(params),
            preview if isinstance(preview, dict) else None, document_name, document_bytes,
            int_param(params, "message_thread_id")))
