"""The reply parser: a table of real-world replies, and properties (hypothesis)."""
from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedback.evaluations.levels import LEVELS
from feedback.sms.parser import KINDS, OPT_IN_WORDS, OPT_OUT_WORDS, parse_reply

# (what a citizen typed, kind, level): digits follow the invitation, 5 = 非常满意 … 1 = 非常不满意.
REAL_WORLD = [
    ("5", "rating", 5),
    ("５", "rating", 5),  # full-width digit from a Chinese IME
    (" 4 ", "rating", 4),
    ("3。", "rating", 3),
    ("2！", "rating", 2),
    ("1", "rating", 1),
    ("【5】", "rating", 5),
    ("5分", "rating", 5),
    ("５分，谢谢", "rating", 5),
    ("给5分", "rating", 5),
    ("我选4", "rating", 4),
    ("5星好评", "rating", 5),
    ("五星", "rating", 5),
    ("五", "rating", 5),
    ("55", "rating", 5),
    ("5 5", "rating", 5),
    ("5\n", "rating", 5),
    ("回复5，工作人员很热情", "rating", 5),
    ("非常满意", "rating", 5),
    ("非常满意！", "rating", 5),
    ("非 常 满 意", "rating", 5),
    ("满意", "rating", 4),
    ("满意，谢谢", "rating", 4),
    ("基本满意", "rating", 3),
    ("基本满意吧", "rating", 3),
    ("不满意", "rating", 2),
    ("非常不满意", "rating", 1),  # not 不满意, not 满意: the longest name wins
    ("非常不满意！！！排队两个小时", "rating", 1),
    ("5 非常满意", "rating", 5),
    ("1 非常不满意", "rating", 1),
    ("2 不是很满意", "rating", 2),  # an explicit digit beats a negated name
    ("很满意", "ambiguous", None),  # 4 or 5?
    ("很不满意", "ambiguous", None),  # 2 or 1?
    ("不是很满意", "ambiguous", None),
    ("不太满意", "ambiguous", None),
    ("1非常满意", "ambiguous", None),  # digit and name disagree
    ("5满意", "ambiguous", None),  # 5 is 非常满意, 满意 is 4
    ("4或5", "ambiguous", None),
    ("12345", "ambiguous", None),  # the menu copied back
    ("10分", "ambiguous", None),
    ("0", "ambiguous", None),
    ("6", "ambiguous", None),
    ("3号窗口，等了20分钟", "ambiguous", None),
    ("谢谢", "text", None),
    ("好的", "text", None),
    ("一般", "text", None),
    ("我要投诉", "text", None),  # only a message *beginning* with 投诉 is a complaint
    ("退订谢谢", "text", None),  # opt-out words count only alone
    ("?", "empty", None),
    ("", "empty", None),
    ("👍", "empty", None),
    ("TD", "opt_out", None),
    ("td", "opt_out", None),
    ("ｔｄ", "opt_out", None),
    ("T", "opt_out", None),
    ("退订", "opt_out", None),
    ("退订。", "opt_out", None),
    ("STOP", "opt_out", None),
    ("STOP!", "opt_out", None),
    ("Unsubscribe", "opt_out", None),
    ("订阅", "opt_in", None),
    ("start", "opt_in", None),
    ("投诉 窗口工作人员态度恶劣，多次让我补材料", "complaint", None),
    ("投诉：3号窗口排队太久", "complaint", None),  # digits in a complaint do not rate
    ("【投诉】大厅空调坏了一周没人修", "complaint", None),
]


def test_the_table_has_at_least_forty_real_world_replies():
    assert len(REAL_WORLD) >= 40


@pytest.mark.parametrize(("text", "kind", "level"), REAL_WORLD)
def test_real_world_reply(text, kind, level):
    reply = parse_reply(text)
    assert (reply.kind, reply.level) == (kind, level), reply


def test_a_complaint_keeps_the_citizens_own_text_after_the_word():
    assert parse_reply("投诉：3号窗口排队太久，").text == "3号窗口排队太久，"
    assert parse_reply("投诉").text == ""


# ---------------------------------------------------------------- properties

noise = st.text(alphabet=" \t\n,.!?，。！？、；：“”（）【】~…-", max_size=6)
FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
# Words that contain no digit, no level name, no negation or intensifier and no opt word.
filler = st.text(alphabet="谢工作人员窗口排队办理材料今天下午大厅请问好的吧呀呢啊", max_size=8)


@given(st.text(max_size=60))
@example("非常不满意满意")
@example("投诉")
@example("\x00\u200b")
def test_parse_reply_never_raises_and_gives_a_level_only_for_a_rating(text):
    reply = parse_reply(text)
    assert reply.kind in KINDS
    assert (reply.level in LEVELS) if reply.kind == "rating" else reply.level is None


@given(st.sampled_from(sorted(LEVELS)), noise, noise, st.booleans())
def test_a_digit_with_punctuation_and_spaces_around_rates_that_level(level, before, after, fullwidth):
    digit = str(level).translate(FULLWIDTH) if fullwidth else str(level)
    reply = parse_reply(before + digit + after)
    assert (reply.kind, reply.level) == ("rating", level)


@given(st.sampled_from(sorted(LEVELS)), filler, filler)
def test_a_single_digit_with_plain_words_around_rates_that_level(level, before, after):
    reply = parse_reply(before + str(level) + after)
    assert (reply.kind, reply.level) == ("rating", level)


@given(st.sampled_from(sorted(LEVELS)), noise, noise)
def test_a_level_name_with_punctuation_around_rates_that_level_longest_name_first(level, before, after):
    reply = parse_reply(before + LEVELS[level].label + after)
    assert (reply.kind, reply.level) == ("rating", level)


@given(st.sampled_from(sorted(LEVELS)), st.sampled_from(sorted(LEVELS)), filler, filler, filler)
def test_two_different_digits_are_ambiguous(a, b, w1, w2, w3):
    reply = parse_reply(w1 + str(a) + w2 + str(b) + w3)
    if a == b:
        assert (reply.kind, reply.level) == ("rating", a)
    else:
        assert reply.kind == "ambiguous"


@given(st.sampled_from(sorted(LEVELS)), st.sampled_from(sorted(LEVELS)), noise)
def test_a_digit_with_a_contradicting_level_name_is_ambiguous(digit, named, sep):
    reply = parse_reply(str(digit) + sep + LEVELS[named].label)
    assert reply.kind == ("rating" if digit == named else "ambiguous")


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30))
def test_full_width_and_half_width_text_read_the_same(text):
    assert parse_reply(text.translate(FULLWIDTH)).kind == parse_reply(text).kind
    assert parse_reply(text.translate(FULLWIDTH)).level == parse_reply(text).level


@given(st.sampled_from(sorted(OPT_OUT_WORDS)), noise, noise, st.randoms(use_true_random=False))
def test_an_opt_out_word_alone_in_any_case_opts_out(word, before, after, rnd):
    mixed = "".join(ch.upper() if rnd.random() < 0.5 else ch.lower() for ch in word)
    assert parse_reply(before + mixed + after).kind == "opt_out"


@given(st.sampled_from(sorted(OPT_IN_WORDS)), noise)
def test_an_opt_in_word_alone_opts_back_in(word, after):
    assert parse_reply(word.lower() + after).kind == "opt_in"


@settings(max_examples=50)
@given(noise, st.text(max_size=40))
def test_a_message_beginning_with_tousu_is_a_complaint_whatever_follows(before, rest):
    assert parse_reply(before + "投诉" + rest).kind == "complaint"
