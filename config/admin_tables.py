"""Key/value records (evidence, metadata, detection numbers) as admin tables, never raw JSON."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html, format_html_join

# Words of a key written as people write them; other words are capitalised as they come.
KEY_WORDS = {
    "mae": "MAE",
    "mape": "MAPE",
    "wape": "WAPE",
    "rmsse": "RMSSE",
    "mase": "MASE",
    "wql": "wQL",
    "fva": "FVA",
    "psi": "PSI",
    "cusum": "CUSUM",
    "id": "ID",
    "pct": "%",
    "t": "T",
}


def key_label(key: str) -> str:
    """`baseline_mae` → "Baseline MAE", `decision.version` → "Decision: version"."""
    parts = []
    for part in key.split("."):
        words = [KEY_WORDS.get(word, word) for word in part.split("_") if word]
        parts.append(" ".join(words))
    label = ": ".join(parts)
    return label[:1].upper() + label[1:]


def evidence_pairs(evidence: Any, *, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """A record as readable key/value pairs (nested keys joined with a dot); long lists are
    counted rather than spelled out."""
    if not isinstance(evidence, dict):
        return []
    pairs: list[tuple[str, str]] = []
    for key, value in evidence.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if depth < 2:
                pairs.extend(evidence_pairs(value, prefix=f"{name}.", depth=depth + 1))
            continue
        if isinstance(value, list):
            text = (
                ", ".join(str(item) for item in value) if len(value) <= 4 else f"{len(value)} items"
            )
        elif isinstance(value, float):
            text = f"{value:.4g}"
        elif value is None or value == "":
            continue
        else:
            text = str(value)
        pairs.append((name, text))
    return pairs


def pairs_table(data: Any, *, labelled: bool = False) -> str:
    """A record as a two-column table, keys as stored or (`labelled`) as words; "—" when
    empty."""
    pairs = evidence_pairs(data)
    if not pairs:
        return "—"
    if labelled:
        rows = format_html_join(
            "",
            '<tr data-key="{}"><th>{}</th><td>{}</td></tr>',
            ((key, key_label(key), value) for key, value in pairs),
        )
    else:
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", pairs)
    return format_html('<table class="arena-pairs">{}</table>', rows)
