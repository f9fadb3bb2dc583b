"""The exchange's transports, chosen by ``EXCHANGE_ADAPTER`` (env ``FEEDBACK_EXCHANGE_ADAPTER``):
``none`` (default: nothing is sent), ``log`` (written to the log, taken as delivered),
``national-json`` (the national-style JSON push), or ``package.module:ClassName`` for a
province's own :class:`Adapter` subclass."""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from feedback.exchange.adapters.base import Adapter, Delivery, Outcome, Outgoing, TransientError
from feedback.exchange.adapters.national_json import NationalJsonAdapter
from feedback.exchange.adapters.simple import LogAdapter, NoneAdapter

__all__ = ["Adapter", "Delivery", "Outcome", "Outgoing", "TransientError", "BUILT_IN",
           "adapter_class", "make_adapter"]

BUILT_IN: dict[str, type[Adapter]] = {
    "none": NoneAdapter,
    "log": LogAdapter,
    "national-json": NationalJsonAdapter,
}
SETTING = "FEEDBACK_EXCHANGE_ADAPTER"


def adapter_class(name: str) -> type[Adapter]:
    """The Adapter class an ``EXCHANGE_ADAPTER`` value names: a built-in name or a dotted
    path ``package.module:ClassName``. A clear ValueError naming the setting otherwise."""
    name = (name or "none").strip()
    if name in BUILT_IN:
        return BUILT_IN[name]
    if ":" not in name:
        choices = " | ".join(BUILT_IN)
        raise ValueError(f"{SETTING}={name!r} 无法识别：可选 {choices}，或 package.module:ClassName")
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{SETTING}={name!r}：应写作 package.module:ClassName")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises while loading
        raise ValueError(f"{SETTING}={name!r}：无法导入模块 {module_name}（{type(exc).__name__}: {exc}）") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{SETTING}={name!r}：模块 {module_name} 中没有 {attribute}") from None
    if not (isinstance(target, type) and issubclass(target, Adapter)):
        raise ValueError(f"{SETTING}={name!r}：{attribute} 不是 feedback.exchange.adapters.base.Adapter 的子类")
    return target


def make_adapter(config: Mapping[str, Any]) -> Adapter:
    """A new adapter for one push run, chosen by ``config["EXCHANGE_ADAPTER"]`` (the Flask
    config); the caller closes it."""
    return adapter_class(str(config.get("EXCHANGE_ADAPTER") or "none"))(config)
