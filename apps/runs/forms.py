"""The launch form: one input per RunConfig field, validated by the trainer's own `RunConfig.from_dict`."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
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


class LaunchForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="A name to find the run by.")

    def __init__(self, *args, preset: str = "demo-cpu", **kwargs):
        super().__init__(*args, **kwargs)
        self.preset_name = preset
        base = trainer_config.preset(preset).to_dict()
        self.config_keys = []
        for _section, key, tp, help_text in config_fields():
            field = _form_field(tp, help_text)
            field.initial = _lookup(base, key)
            field.label = key.rsplit(".", 1)[-1]
            if key in ("schema_version", "preset"):
                field.disabled = True
            self.fields[key] = field
            self.config_keys.append(key)
        self.config: dict | None = None

    def sections(self) -> list[tuple[str, list]]:
        grouped: dict[str, list] = {}
        for section, key, _tp, _help in config_fields():
            grouped.setdefault(section, []).append(self[key])
        return list(grouped.items())

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
