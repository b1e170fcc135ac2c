"""A greeting or a thanks on its own: a friendly word back, not "no answer" and no question for staff.

Only a whole message counts, compared in the matcher's normal form (case, width, punctuation, emoji and
Traditional characters folded): "Hello, how do I renew my ID card?" is a question as before.
"""

from __future__ import annotations

from handlers.router import Turn
from handlers.types import Button, Reply
from knowledge.normalise import normalise

GREETINGS = frozenset(
    {
        "hi", "hello", "hey", "hiya", "hi there", "hello there", "hey there", "good morning",
        "good afternoon", "good evening", "greetings", "anyone there", "is anyone there", "are you there",
        "你好", "您好", "嗨", "哈喽", "哈啰", "在吗", "在不在", "有人吗", "有人在吗", "你好在吗", "您好在吗",
        "早上好", "上午好", "中午好", "下午好", "晚上好", "早",
    }
)  # fmt: skip
THANKS = frozenset(
    {
        "thanks", "thank you", "thanks a lot", "thank you very much", "many thanks", "thanks very much",
        "thx", "ty", "cheers", "ok thanks", "ok thank you", "great thanks", "thanks bye", "thank you bye",
        "谢谢", "谢谢你", "谢谢您", "多谢", "感谢", "非常感谢", "太感谢了", "谢啦", "谢了", "好的谢谢",
        "谢谢啦", "辛苦了", "好的辛苦了",
    }
)  # fmt: skip


def small_talk(turn: Turn, text: str) -> list[Reply] | None:
    """The reply to a message that is only a greeting or a thanks; None for anything else."""
    said = normalise(text)
    forms = {said, said.replace(" ", "")}  # Chinese phrases are kept without the spaces punctuation leaves
    if forms & GREETINGS:
        menu = (Button(turn.t("btn_menu"), payload="menu:1"),)
        return [Reply(turn.t("greeting"), buttons=(menu,), kind="greeting")]
    if forms & THANKS:
        return [Reply(turn.t("you_are_welcome"), kind="thanks")]
    return None
