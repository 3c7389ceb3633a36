"""Plain-text and markdown tables of result rows (dicts), and the columns of
the benchmark tools' tables."""
from typing import Dict, Sequence, Tuple


def _cell(row: Dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return 'n/a' if value is None else format(value, fmt)


def text_table(rows: Sequence[Dict], columns: Sequence[Tuple[str, str, str]]) -> str:
    """Aligned plain-text table; columns are (key, header, format)."""
    cells = [[header for _, header, _ in columns]]
    cells += [[_cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = []
    for i, line in enumerate(cells):
        lines.append('  '.join(c.rjust(w) if j else c.ljust(w)
                               for j, (c, w) in enumerate(zip(line, widths))))
        if i == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def markdown_table(rows: Sequence[Dict], columns: Sequence[Tuple[str, str, str]]) -> str:
    """GitHub markdown table; columns are (key, header, format)."""
    lines = ['| ' + ' | '.join(h for _, h, _ in columns) + ' |',
             '|' + '|'.join('---' for _ in columns) + '|']
    lines += ['| ' + ' | '.join(_cell(r, k, f) for k, _, f in columns) + ' |' for r in rows]
    return '\n'.join(lines)


MODEL_COLUMNS = [('model', 'model', ''), ('impl', 'impl', ''), ('params_m', 'params (M)', '.2f'),
                 ('shape', 'shape', ''), ('mode', 'mode', ''), ('dtype', 'dtype', ''),
                 ('compiled', 'compiled', ''), ('median_ms', 'median ms', '.1f'),
                 ('img_per_s', 'img/s', '.1f'), ('peak_mib', 'peak MiB', '.0f')]
OP_COLUMNS = [('op', 'op', ''), ('impl', 'impl', ''), ('shape', 'shape', ''),
              ('dtype', 'dtype', ''), ('mode', 'mode', ''), ('median_ms', 'median ms', '.3f'),
              ('gb_per_s', 'GB/s', '.1f'), ('of_copy', 'of copy', '.0%')]
