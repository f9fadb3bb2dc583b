"""The national-json adapter against the fake provincial gateway running as a real process:
plain and SM2+SM4, tokens that expire mid-run, refusals, every way a request can fail
(malformed answer, 503, no answer, a dropped answer, a wrong secret), and the choice of
adapter by setting."""
from __future__ import annotations

import base64
import logging
import threading
import time
from datetime import datetime, timezone

import pytest
from gmssl import sm2, sm4

from feedback.exchange import crypto
from feedback.exchange.adapters import (Adapter, Delivery, LogAdapter, NoneAdapter, Outcome, Outgoing,
                                        TransientError, make_adapter)
from feedback.exchange.adapters.national_json import NationalJsonAdapter, canonical_json, read_results, wire_time
from tests.support.gateway import SM2_PRIVATE_KEY, SM2_PUBLIC_KEY, SM4_KEY, adapter_config, start_gateway

pytestmark = pytest.mark.processes  # real gateway processes: one after another (tests/conftest.py)


def record(n: int, project: str | None = None) -> Outgoing:
    project = project or f"34CITY{n:08d}"
    return Outgoing(f"34-RC-{n:06d}", "record", {
        "projectNo": project, "serviceNumber": 1, "serviceName": "办结", "taskCode": "11340100MB1234567X4000111111000",
        "taskName": "城乡居民基本养老保险参保登记", "deptCode": "11340100MB1234567X", "areaCode": "341602000000",
        "proStatus": "3", "acceptDate": "20250301093000", "userProp": "1", "dataSource": "city"})


def evaluation(n: int, project: str | None = None) -> Outgoing:
    return Outgoing(f"34-EV-{n:06d}", "evaluation", {
        "projectNo": project or f"34CITY{n:08d}", "serviceNumber": 1, "assessNumber": 1, "pf": "4",
        "satisfaction": "5", "evalDetail": "", "writingEvaluation": "窗口服务很耐心", "assessTime": "20250301100000"})


@pytest.fixture
def adapter(gateway):
    made = make_adapter(adapter_config(gateway, EXCHANGE_TIMEOUT_SECONDS=0.5))
    yield made
    made.close()


def statuses(delivery: Delivery) -> list[str]:
    return [o.status for o in delivery.outcomes]


def test_a_plain_batch_is_acknowledged_with_the_gateways_remote_ids_and_stored_as_sent(gateway, adapter):
    batch = [record(n) for n in range(3)]
    delivery = adapter.send("record", batch)

    assert statuses(delivery) == ["acknowledged"] * 3
    stored = gateway.items("record")
    assert [o.remote_id for o in delivery.outcomes] == [item["remoteId"] for item in stored]
    assert len({o.remote_id for o in delivery.outcomes}) == 3
    assert [{k: v for k, v in item.items() if k != "remoteId"} for item in stored] == \
        [{**m.payload, "messageId": m.message_id} for m in batch]
    assert "34-RC-000002" in delivery.request and "窗口" not in delivery.request
    assert '"accessToken": "***"' in delivery.request  # the token never reaches the ledger
    assert "P0000" in delivery.answer

    assert statuses(adapter.send("evaluation", [evaluation(0)])) == ["acknowledged"]
    stats = gateway.stats()
    assert (stats["accepted"], stats["duplicates"], stats["order_violations"], stats["tokens_issued"]) == (4, 0, 0, 1)


def test_a_signed_and_encrypted_batch_is_verified_decrypted_and_stored(secure_gateway):
    secure = make_adapter(adapter_config(secure_gateway, secure=True))
    try:
        delivery = secure.send("record", [record(1), record(2)])
    finally:
        secure.close()

    assert statuses(delivery) == ["acknowledged", "acknowledged"]
    assert [item["projectNo"] for item in secure_gateway.items("record")] == ["34CITY00000001", "34CITY00000002"]
    assert '"encrypt": "SM4"' in delivery.request and "34CITY00000001" in delivery.request  # logged before encryption


def test_items_handed_over_as_json_text_go_on_the_wire_as_they_are_and_their_signature_holds():
    """The pusher hands over what PostgreSQL wrote (Outgoing.text); a gateway that checks the
    SM2 signature over the plain array (no SM4) re-serialises what it parsed: the text must
    be that serialisation, escapes included, beside items the adapter encodes itself."""
    odd = record(1).payload | {"taskName": '养老 "登记"\\换行\n\t\x01\u2028😀'}
    texts = [Outgoing("34-RC-000001", "record", text=canonical_json({"messageId": "34-RC-000001", **odd})),
             record(2),
             Outgoing("34-RC-000003", "record", text=canonical_json({"messageId": "34-RC-000003",
                                                                    **record(3).payload}))]
    with start_gateway(sm2_public_key=SM2_PUBLIC_KEY) as signed:
        made = make_adapter(adapter_config(signed, EXCHANGE_SM2_PRIVATE_KEY=SM2_PRIVATE_KEY))
        try:
            delivery = made.send("record", texts)
        finally:
            made.close()
        stored = signed.items("record")
        stats = signed.stats()
    assert statuses(delivery) == ["acknowledged"] * 3, f"the signed gateway refused: {delivery.answer[:300]}"
    assert stats["accepted"] == 3
    assert [item["taskName"] for item in stored] == [odd["taskName"], record(2).payload["taskName"],
                                                     record(3).payload["taskName"]], "the odd text arrived intact"
    assert texts[0].payload == odd, "the fields are read back from the text for an adapter that wants them"
    assert texts[0].text in delivery.request, "the text went on the wire (and into the log) unchanged"


def test_the_secure_gateway_refuses_an_unsigned_or_unencrypted_or_wrongly_signed_push(secure_gateway):
    unencrypted = make_adapter(adapter_config(secure_gateway, EXCHANGE_SM2_PRIVATE_KEY=SM2_PRIVATE_KEY))
    unsigned = make_adapter(adapter_config(secure_gateway, EXCHANGE_SM4_KEY=SM4_KEY))
    stranger_private, _ = crypto.generate_sm2_keypair()
    stranger = make_adapter(adapter_config(secure_gateway, EXCHANGE_SM4_KEY=SM4_KEY,
                                           EXCHANGE_SM2_PRIVATE_KEY=stranger_private))
    for wrong, code in ((unencrypted, "encrypt_required"), (unsigned, "invalid_signature"),
                        (stranger, "invalid_signature")):
        with pytest.raises(TransientError) as failure:
            wrong.send("record", [record(1)])
        assert code in failure.value.reason and code in failure.value.answer
        wrong.close()
    assert secure_gateway.stats()["accepted"] == 0


def test_the_token_is_fetched_once_per_run_and_again_when_the_gateway_drops_it_mid_run(gateway, adapter):
    adapter.send("record", [record(1)])
    adapter.send("record", [record(2)])
    assert gateway.stats()["tokens_issued"] == 1

    gateway.control(expire_tokens=True)
    delivery = adapter.send("record", [record(3)])

    assert statuses(delivery) == ["acknowledged"]
    stats = gateway.stats()
    assert (stats["tokens_issued"], stats["accepted"], stats["requests"]) == (2, 3, 4)  # 3 pushes + 1 refused


def test_a_token_refused_twice_in_a_row_is_a_transient_failure(gateway, adapter, monkeypatch):
    adapter.send("record", [record(1)])
    monkeypatch.setattr(adapter, "_token", lambda logged: "not-a-token")

    with pytest.raises(TransientError, match="access_token_invalid") as failure:
        adapter.send("record", [record(2)])
    assert "access_token_invalid" in failure.value.answer and "34-RC-000002" in failure.value.request


def test_a_refused_message_is_rejected_with_the_gateways_reason_and_the_others_are_acknowledged(gateway, adapter):
    gateway.control(refuse=["34-RC-000002"])

    delivery = adapter.send("record", [record(1), record(2), record(3)])

    assert delivery.outcomes[1] == Outcome("34-RC-000002", "rejected", reason="数据校验不通过")
    assert statuses(delivery) == ["acknowledged", "rejected", "acknowledged"]
    assert gateway.stats()["rejected"] == 1
    gateway.control(refuse=[])  # the province fixed its rule: the operator's re-push goes through
    assert statuses(adapter.send("record", [record(2)])) == ["acknowledged"]


def test_an_evaluation_before_its_record_is_rejected_and_counted_as_an_order_violation(gateway, adapter):
    delivery = adapter.send("evaluation", [evaluation(7)])

    assert delivery.outcomes == [Outcome("34-EV-000007", "rejected", reason="办件不存在")]
    assert gateway.stats()["order_violations"] == 1


@pytest.mark.parametrize("mode, expected", [("malformed", "不是 JSON"), ("down", "HTTP 503")])
def test_a_malformed_answer_or_a_503_fails_the_whole_batch_with_both_texts(gateway, adapter, mode, expected):
    adapter.send("record", [record(1)])  # the token first, so the push is what fails
    gateway.control(mode=mode)

    with pytest.raises(TransientError) as failure:
        adapter.send("record", [record(2)])

    assert expected in failure.value.reason
    assert "34-RC-000002" in failure.value.request
    assert failure.value.answer  # the HTML page, or the 503 body
    gateway.control(mode="ok")
    assert statuses(adapter.send("record", [record(2)])) == ["acknowledged"]


def test_no_answer_times_out_and_does_not_block_the_gateway_for_other_clients(gateway, adapter):
    adapter.send("record", [record(1)])
    gateway.control(mode="hang")

    started = time.monotonic()
    with pytest.raises(TransientError, match="0.5 秒内未应答") as failure:
        adapter.send("record", [record(2)])
    assert time.monotonic() - started < 3
    assert failure.value.answer == ""
    assert gateway.stats()["accepted"] == 1  # the control API answers while a request hangs
    assert wait_for(lambda: gateway.stats()["hanging"] == 0)  # it let go when the client left

    gateway.control(mode="ok")
    assert statuses(adapter.send("record", [record(2)])) == ["acknowledged"]


def wait_for(condition, seconds: float = 5.0) -> bool:
    """Poll another process until ``condition()`` holds (real processes, not domain time)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_a_held_request_is_answered_once_the_gateway_recovers(gateway):
    patient = make_adapter(adapter_config(gateway, EXCHANGE_TIMEOUT_SECONDS=10))
    patient.send("record", [record(1)])
    gateway.control(mode="hang")
    outcome: list = []
    sender = threading.Thread(target=lambda: outcome.append(patient.send("record", [record(2)])))
    sender.start()
    assert wait_for(lambda: gateway.stats()["hanging"] == 1)

    gateway.control(mode="ok")
    sender.join(10)
    patient.close()

    assert statuses(outcome[0]) == ["acknowledged"]
    assert gateway.stats()["hanging"] == 0


def test_a_gateway_that_is_not_there_is_a_transient_failure():
    vanished = start_gateway()
    config = adapter_config(vanished)
    vanished.kill()
    vanished.stop()
    lost = make_adapter(config)
    with pytest.raises(TransientError, match="获取令牌失败：连接中断或被拒绝"):
        lost.send("record", [record(1)])
    lost.close()


def test_resending_after_a_dropped_answer_acknowledges_with_the_same_remote_ids_and_no_duplicates(gateway, adapter):
    batch = [record(n) for n in range(5)]
    gateway.control(drop_answers=1)

    with pytest.raises(TransientError, match="连接中断"):
        adapter.send("record", batch)
    stored = {item["messageId"]: item["remoteId"] for item in gateway.items("record")}
    assert len(stored) == 5  # the gateway kept them; only the answer was lost

    delivery = adapter.send("record", batch)

    assert statuses(delivery) == ["acknowledged"] * 5
    assert {o.message_id: o.remote_id for o in delivery.outcomes} == stored
    assert '"status": "duplicate"' in delivery.answer
    stats = gateway.stats()
    assert (stats["accepted"], stats["redelivered"], stats["duplicates"]) == (5, 5, 0)


def test_the_same_event_under_a_new_message_id_is_what_the_duplicates_count_catches(gateway, adapter):
    adapter.send("record", [record(1)])
    twin = Outgoing("34-RC-999999", "record", record(1).payload)

    assert statuses(adapter.send("record", [twin])) == ["acknowledged"]
    assert gateway.stats()["duplicates"] == 1


def test_a_wrong_app_secret_is_a_transient_failure_that_names_the_token_request(gateway):
    wrong = make_adapter(adapter_config(gateway, EXCHANGE_APP_SECRET="not-the-secret"))
    with pytest.raises(TransientError) as failure:
        wrong.send("record", [record(1)])
    wrong.close()

    assert "获取令牌失败" in failure.value.reason and "invalid_sign" in failure.value.reason
    assert "HTTP 401" in failure.value.reason
    assert "not-the-secret" not in failure.value.request
    assert gateway.stats()["requests"] == 0


def test_results_missing_an_item_leave_it_to_retry_and_unusable_results_raise():
    batch = [record(1), record(2)]
    answer = {"code": "0", "data": {"results": [{"messageId": "34-RC-000001", "status": "accepted",
                                                 "remoteId": "R1"}]}}

    assert read_results(batch, answer) == [Outcome("34-RC-000001", "acknowledged", remote_id="R1"),
                                           Outcome("34-RC-000002", "retry", reason="省平台应答中没有这一条，稍后重推")]
    for wrong in ({"code": "0"}, {"code": "0", "data": {"results": "ok"}},
                  {"code": "0", "data": {"results": [{"status": "accepted"}]}}):
        with pytest.raises(ValueError):
            read_results(batch, wrong)


def test_wire_times_are_beijing_time():
    assert wire_time(datetime(2025, 12, 31, 16, 30, 5, tzinfo=timezone.utc)) == "20260101003005"


def test_signatures_and_ciphertexts_are_the_ones_gmssl_and_the_standard_agree_on():
    assert crypto.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert "04" + crypto.sm2_public_key(SM2_PRIVATE_KEY) == SM2_PUBLIC_KEY
    data = '[{"projectNo":"34CITY1"}]'.encode()
    signature = crypto.sm2_sign(data, SM2_PRIVATE_KEY, SM2_PUBLIC_KEY)
    reference = sm2.CryptSM2(private_key=SM2_PRIVATE_KEY, public_key="", asn1=True)
    reference.public_key = SM2_PUBLIC_KEY[2:]
    assert reference.verify_with_sm3(signature, data)
    assert crypto.sm2_verify(reference.sign_with_sm3(data), data, SM2_PUBLIC_KEY)
    assert not crypto.sm2_verify(signature, data + b" ", SM2_PUBLIC_KEY)
    assert not crypto.sm2_verify("not hex", data, SM2_PUBLIC_KEY)

    key = bytes.fromhex(SM4_KEY)
    raw = crypto.sm4_encrypt("城乡居民 0123456789abcdef".encode(), key)
    ciphertext = base64.b64decode(raw)
    cipher = sm4.CryptSM4()
    cipher.set_key(key, sm4.SM4_DECRYPT)
    assert cipher.crypt_cbc(ciphertext[:16], ciphertext[16:]).decode() == "城乡居民 0123456789abcdef"
    assert crypto.sm4_decrypt(raw, key).decode() == "城乡居民 0123456789abcdef"


class RecordingAdapter(Adapter):
    """A province's own adapter, loaded by dotted path."""

    name = "recording"

    def send(self, kind: str, batch: list[Outgoing]) -> Delivery:
        return Delivery([Outcome(m.message_id, "acknowledged", remote_id="x") for m in batch], "", "")


NOT_AN_ADAPTER = object


def test_make_adapter_picks_by_setting_including_a_dotted_path(gateway):
    assert isinstance(make_adapter({"EXCHANGE_ADAPTER": "none"}), NoneAdapter)
    assert make_adapter({}).sends is False
    assert isinstance(make_adapter({"EXCHANGE_ADAPTER": "log"}), LogAdapter)
    national = make_adapter(adapter_config(gateway))
    assert isinstance(national, NationalJsonAdapter)
    national.close()
    custom = make_adapter({"EXCHANGE_ADAPTER": "tests.exchange.test_national_json:RecordingAdapter"})
    assert isinstance(custom, RecordingAdapter) and custom.config["EXCHANGE_ADAPTER"].endswith("RecordingAdapter")


@pytest.mark.parametrize("setting", ["tests.exchange.no_such_module:Adapter", "tests.exchange.test_national_json:Nope",
                                     "tests.exchange.test_national_json:NOT_AN_ADAPTER", "soap", "tests:"])
def test_make_adapter_refuses_what_it_cannot_load_naming_the_setting(setting):
    with pytest.raises(ValueError, match="FEEDBACK_EXCHANGE_ADAPTER") as failure:
        make_adapter({"EXCHANGE_ADAPTER": setting})
    assert setting in str(failure.value)


def test_national_json_refuses_a_missing_url_or_mismatched_keys():
    with pytest.raises(ValueError, match="FEEDBACK_EXCHANGE_URL"):
        make_adapter({"EXCHANGE_ADAPTER": "national-json"})
    _, other_public = crypto.generate_sm2_keypair()
    with pytest.raises(ValueError, match="不是一对"):
        make_adapter({"EXCHANGE_ADAPTER": "national-json", "EXCHANGE_URL": "http://x",
                      "EXCHANGE_SM2_PRIVATE_KEY": SM2_PRIVATE_KEY, "EXCHANGE_SM2_PUBLIC_KEY": other_public})
    with pytest.raises(ValueError, match="FEEDBACK_EXCHANGE_SM4_KEY"):
        make_adapter({"EXCHANGE_ADAPTER": "national-json", "EXCHANGE_URL": "http://x", "EXCHANGE_SM4_KEY": "abc"})


def test_the_log_adapter_logs_each_batch_and_acknowledges_every_message(caplog):
    caplog.set_level(logging.INFO, logger="feedback.exchange")
    delivery = make_adapter({"EXCHANGE_ADAPTER": "log"}).send("record", [record(1), record(2)])

    assert [(o.status, o.remote_id) for o in delivery.outcomes] == [("acknowledged", "log-34-RC-000001"),
                                                                     ("acknowledged", "log-34-RC-000002")]
    logged = [r.getMessage() for r in caplog.records if r.name == "feedback.exchange"]
    assert len(logged) == 1 and "record ×2" in logged[0] and "34-RC-000002" in logged[0]
