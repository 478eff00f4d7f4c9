"""Native tests of the Python route-by-field plugin: no Wasm needed."""

import pytest

from switchyard_sdk.testing import Err, event, run
from route_by_field import RouteByField

CONFIG = {
    "pointer": "/type",
    "routes": "refund=refunds|audit, order=billing",
    "default": "audit",
    "priorities": "refund=8",
}


def test_values_route_to_their_destinations_and_priorities():
    refund, order, other, missing = run(
        RouteByField,
        CONFIG,
        [event({"type": "refund"}), event({"type": "order"}), event({"type": "x"}), event({"id": 1})],
    )
    assert refund.value.routes == ["refunds", "audit"]
    assert refund.value.priority == 8
    assert order.value.routes == ["billing"]
    assert order.value.priority is None
    assert other.value.routes == ["audit"]
    assert missing.value.routes == ["audit"]


def test_without_a_default_other_values_keep_their_routes():
    [other] = run(RouteByField, {"pointer": "/type", "routes": "a=b"}, [event({"type": "z"})])
    assert other.value.routes is None


def test_numbers_and_non_json_payloads():
    n, text = run(RouteByField, {"pointer": "/n", "routes": "3=three"}, [event({"n": 3}), event(text="hi")])
    assert n.value.routes == ["three"]
    assert text.value.routes is None


@pytest.mark.parametrize(
    "config, message",
    [
        ({"routes": "a=b"}, "config key 'pointer' is required"),
        ({"pointer": "type", "routes": "a=b"}, "must start with '/'"),
        ({"pointer": "/t", "routes": "a"}, "is not value=..."),
        ({"pointer": "/t", "routes": "a=b", "priorities": "a=12"}, "is not 0-9"),
        ({"pointer": "/t", "routes": "a=b", "rotues": "x"}, "unknown config key 'rotues'"),
    ],
)
def test_bad_config_is_refused_with_the_key_named(config, message):
    with pytest.raises(Err) as refused:
        run(RouteByField, config, [])
    assert message in refused.value.value
