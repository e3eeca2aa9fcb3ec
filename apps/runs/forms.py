"""The launch form: one input per RunConfig field, validated by the trainer's own `RunConfig.from_dict`;
the common fields first, the rest by section with what changed from the preset, a pasted or uploaded
config JSON, and a preview of the differences."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import typing
from typing import Any, Literal

from django import forms

from apps.runs.services import validate_config
from trainer import config as trainer_config


def _field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each dataclass field (the config's units and paper symbols)."""
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body else []
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = after.value.value.strip()
    return docs


@functools.cache
def config_fields() -> list[tuple[str, str, Any, str]]:
    """(section, dotted key, type, help) for every leaf field of RunConfig, in declaration order."""
    rows: list[tuple[str, str, Any, str]] = []

    def walk(cls: type, prefix: str, section: str) -> None:
        hints = typing.get_type_hints(cls)
        docs = _field_docs(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.", f.name)
            else:
                rows.append((section, prefix + f.name, tp, docs.get(f.name, "")))

    walk(trainer_config.RunConfig, "", "general")
    return rows


def _lookup(d: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d[part]
    return d


def _assign(d: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        d = d.setdefault(part, {})
    d[leaf] = value


class PairField(forms.CharField):
    """A (low, high) pair of numbers typed as `0.05, 0.75`."""

    def to_python(self, value):
        text = super().to_python(value)
        parts = [p.strip() for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
        try:
            return [float(p) for p in parts]
        except ValueError:
            raise forms.ValidationError(
                "Enter numbers separated by a comma, e.g. 0.05, 0.75."
            ) from None

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(f"{v:g}" for v in value)
        return value


class ListField(forms.CharField):
    """A list of names typed as `tensorboard, wandb` (empty = none)."""

    def to_python(self, value):
        text = super().to_python(value)
        return [p.strip() for p in text.replace("[", "").replace("]", "").split(",") if p.strip()]

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value


def _form_field(tp: Any, help_text: str) -> forms.Field:
    common = {"help_text": help_text, "label": ""}
    if typing.get_origin(tp) is list:
        return ListField(required=False, **common)
    if typing.get_origin(tp) is Literal:
        return forms.ChoiceField(choices=[(c, c) for c in tp.__args__], **common)
    if typing.get_origin(tp) is tuple:
        return PairField(**common)
    if tp is bool:
        return forms.BooleanField(required=False, **common)
    if tp is int:
        return forms.IntegerField(**common)
    if tp is float:
        return forms.FloatField(**common)
    return forms.CharField(required=False, strip=False, **common)


# The fields people change most, shown first; every other section starts collapsed.
COMMON = (
    "run.phases", "rollout.tasks_per_phase", "model.policy", "model.tokenizer", "orm.model",
    "rollout.backend", "rollout.server_url", "sft.lr", "actor.lr", "critic.lr", "orm.lr",
    "run.report_to",
)  # fmt: skip
MAX_JSON_BYTES = 1_000_000


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b) or (
        isinstance(a, int | float) and isinstance(b, int | float)
        and not isinstance(a, bool) and not isinstance(b, bool) and float(a) == float(b)
    )  # fmt: skip


def shown(value: Any) -> str:
    """A config value as the form shows it (and as launch.js compares it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


class LaunchForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="A name to find the run by.")
    config_json = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="A whole config (as config.json in any checkpoint, or GET /api/runs/ID's "
        '"config"): Preview loads it into the fields, Launch launches it as it is.',
    )
    config_file = forms.FileField(required=False, help_text="Or upload that JSON file.")

    def __init__(self, *args, preset: str = "demo-cpu", **kwargs):
        super().__init__(*args, **kwargs)
        self.preset_name = preset
        self.base = trainer_config.preset(preset).to_dict()
        self.config_keys = []
        for _section, key, tp, help_text in config_fields():
            field = _form_field(tp, help_text)
            field.initial = _lookup(self.base, key)
            field.label = key.rsplit(".", 1)[-1]
            if key in ("schema_version", "preset"):
                field.disabled = True
            self.fields[key] = field
            self.config_keys.append(key)
        self.config: dict | None = None

    def value_of(self, key: str) -> Any:
        """The field's value as the config would hold it; None when it does not parse."""
        field = self.fields[key]
        if not self.is_bound or field.disabled:
            return field.initial
        try:
            value = field.clean(field.bound_data(self[key].data, field.initial))
        except forms.ValidationError:
            return None
        return list(value) if isinstance(value, tuple) else value

    def changed_keys(self) -> set[str]:
        """Config fields whose value differs from the preset's."""
        if not self.is_bound:
            return set()
        return {k for k in self.config_keys if not _same(self.value_of(k), _lookup(self.base, k))}

    def _rows(self, keys, changed: set[str]) -> list[dict]:
        return [
            {"field": self[k], "changed": k in changed, "preset": shown(_lookup(self.base, k))}
            for k in keys
        ]

    def common(self) -> list[dict]:
        return self._rows(COMMON, self.changed_keys())

    def sections(self) -> list[dict]:
        """The other sections, each with its changed-from-preset count; open when it has an error."""
        changed = self.changed_keys()
        grouped: dict[str, list[str]] = {}
        for section, key, _tp, _help in config_fields():
            if key not in COMMON:
                grouped.setdefault(section, []).append(key)
        return [
            {"name": name, "rows": self._rows(keys, changed),
             "changed": sum(k in changed for k in keys),
             "open": any(k in self.errors for k in keys)}
            for name, keys in grouped.items()
        ]  # fmt: skip

    def preview(self) -> list[dict]:
        """(field, preset value, launched value) for every field that differs from the preset."""
        from apps.runs.configs import diff

        if self.config is None:
            return []
        rows = diff([self.base, self.config])
        return [{"field": f, "before": shown(a), "after": shown(b)} for f, (a, b) in rows]

    def clean(self):
        cleaned = super().clean()
        if any(key in self.errors for key in self.config_keys):
            return cleaned
        data: dict = {}
        for key in self.config_keys:
            _assign(data, key, cleaned.get(key))
        try:
            self.config = validate_config(data)
        except (trainer_config.ConfigError, ValueError, TypeError) as exc:
            self._attach(str(exc))
        return cleaned

    def _attach(self, message: str) -> None:
        """Put the trainer's message next to the field it names (`section.field: ...`)."""
        head = message.split(":", 1)[0].strip().split("[", 1)[0]
        head = head.removeprefix("unknown key ").strip("'\"")
        if head in self.fields:
            self.add_error(head, message)
            return
        for key in self.config_keys:
            if key.startswith(head + "."):
                self.add_error(key, message)
                return
        self.add_error(None, message)


def _read_json(post, files) -> tuple[dict | None, str]:
    """The pasted or uploaded config as a dict, or (None, why not); (None, "") when none given."""
    upload = files.get("config_file") if files else None
    if upload is not None:
        if upload.size > MAX_JSON_BYTES:
            return None, "config_file: larger than 1 MB; a config is a few kilobytes"
        raw = upload.read().decode("utf-8", errors="replace")
    else:
        raw = post.get("config_json", "")
    if not raw.strip():
        return None, ""
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if not isinstance(loaded, dict):
        return None, "expected a JSON object (a run config)"
    return loaded, ""


def form_data(config: dict, name: str) -> dict[str, str]:
    """POST data that fills every field of a LaunchForm from a config dict."""
    from apps.runs.configs import flatten

    data = {"name": name}
    for key, value in flatten(config).items():
        if value is True:
            data[key] = "on"
        elif value is not False:
            data[key] = shown(value) if isinstance(value, list | tuple) else str(value)
    return data


def bind_launch_form(post, files, preset: str) -> LaunchForm:
    """The launch form bound to a POST: from the pasted or uploaded config when there is one
    (checked by RunConfig first; its preset, when a known one, is the baseline), else the fields."""
    loaded, problem = _read_json(post, files)
    if problem:
        form = LaunchForm(post, files, preset=preset)
        form.is_valid()
        form.add_error("config_json", problem)
        return form
    if loaded is None:
        return LaunchForm(post, files, preset=preset)
    try:
        config = trainer_config.RunConfig.from_dict(loaded).to_dict()
    except trainer_config.ConfigError as exc:
        form = LaunchForm(post, files, preset=preset)
        form.is_valid()
        form.add_error("config_json", str(exc))
        return form
    baseline = config["preset"] if config["preset"] in trainer_config.PRESETS else preset
    form = LaunchForm(form_data(config, post.get("name", "")), preset=baseline)
    form.fields["preset"].initial = config["preset"]
    form.loaded_json = True
    return form
