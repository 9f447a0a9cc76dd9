"""
EventBridge input transformation as AWS documents it, which moto 5.2.1 does not follow (EventBridge User Guide,
"Amazon EventBridge input transformation", "Input transform examples"): in a JSON input template, a variable placed
outside quotes becomes its value as JSON (a string gets its quotes: `{"instance": <instance>}` gives
`{"instance": "i-0123456789"}`), and inside a quoted string the value is inserted as text
(`"<instance> is in state <state>"`). moto inserted every value as raw text, so `{"accountId": <accountId>}` became a
number and `{"event": <eventName>}` invalid JSON (the event was then dropped with an error).
Also as AWS documents it (EventBridge User Guide, "Amazon EventBridge events": `time` is the event's timestamp in
ISO 8601, e.g. "2017-12-22T18:43:48Z"): moto keeps an event's `time` as epoch seconds until a target serialises the
whole event, so `$.time` in an input path gave a number; the transformation here sees the ISO 8601 string. (Not
modelled: moto's SQS target also converts a top-level "time" key of a transformed input, and fails on text there;
<aws.events.event.json> keeps moto's epoch `time`, which its targets convert when they send the whole event.)
Kept from moto: a variable whose path matches nothing is left as written (AWS: "that variable isn't created"), the
predefined aws.events.event.json and aws.events.event.ingestion-time, and the result parsed as JSON (templates that are
not JSON are not modelled; the pipeline's are JSON).
"""
from __future__ import annotations

import json
import re
from typing import Any

from moto.events.utils import EventTemplateParser

_installed = False
_VARIABLE = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def render(template: str, values: dict[str, Any]) -> str:
    """The template with each known <name> replaced: as JSON outside a quoted string, as text inside one."""
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        match = _VARIABLE.match(template, i) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                out.append(value if isinstance(value, str) else json.dumps(value))
            else:
                out.append(json.dumps(value))
            i = match.end()
            continue
        if char == "\\" and in_string:
            out.append(template[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        out.append(char)
        i += 1
    return "".join(out)


def parse(input_template: str, input_paths_map: dict[str, Any], event: dict[str, Any]) -> Any:
    from jsonpath_ng.ext import parse as json_path

    # Paths of a rule's own template read the event with its ISO 8601 time. moto's default template (a target with no
    # transformer: the whole event) keeps moto's epoch `time`, which its targets convert when they send the event.
    lookup = event
    if input_template and isinstance(event.get("time"), (int, float)):
        from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp

        lookup = {**event, "time": iso_8601_datetime_without_milliseconds(utcfromtimestamp(float(event["time"])))}
    if not input_template:
        input_template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
        input_paths_map = input_paths_map or EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP
    values: dict[str, Any] = {}
    for name, path in (input_paths_map or {}).items():
        found = json_path(path).find(lookup)
        if found:
            values[name] = found[0].value
    values["aws.events.event.json"] = event
    if "ingestion-time" in event:
        values["aws.events.event.ingestion-time"] = event["ingestion-time"]
    return json.loads(render(input_template, values))


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    EventTemplateParser.parse = staticmethod(parse)  # type: ignore[method-assign]
