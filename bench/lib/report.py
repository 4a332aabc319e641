"""The results table: one row per metric with zinc, Distribution, the machine's ceiling,
the ratios and issue 7's targets marked pass/FAIL; plus RESULTS.md upkeep.

A cell holds a number, or an Err whose reason becomes a numbered footnote. A target whose
inputs are missing is "n/a", never a pass.
"""
import datetime
import os
import re

MARKER = "<!-- runs below, newest first; bench/run.sh inserts each run here -->"


class Err:
    def __init__(self, reason):
        self.reason = " ".join(str(reason).split())[:300]


def rows(sz):
    """(key, label, unit, higher is better, ceiling label) for the sizes of this run."""
    mib = lambda n: f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
    return [
        ("manifest_get", "manifest GET", "req/s", True, "nginx 1 KiB GET"),
        ("manifest_head", "manifest HEAD", "req/s", True, "nginx 1 KiB HEAD"),
        ("manifest_get_auth", "manifest GET, bcrypt auth", "req/s", True, None),
        ("blob_get", f"blob GET {mib(sz.big)}, 1 stream", "MB/s", True, "nginx same file"),
        ("blob_get_par", f"blob GET {mib(sz.par)}, {sz.streams} streams", "MB/s", True, "nginx same file"),
        ("push_mono", f"blob push {mib(sz.big)} monolithic", "MB/s", True, "SHA-256 1 core"),
        ("push_chunked", f"blob push {mib(sz.big)}, {mib(sz.chunk)} PATCHes", "MB/s", True, "SHA-256 1 core"),
        ("skopeo_push", f"skopeo push {sz.layers}×{mib(sz.layer)}", "s", False, "skopeo oci:→dir: locally"),
        ("skopeo_pull", f"skopeo pull {sz.layers}×{mib(sz.layer)}", "s", False, "skopeo oci:→dir: locally"),
        ("small_push", f"small image pushes, {sz.clients} clients", "img/s", True, None),
        ("tags_list", f"tags list, {sz.tags} tags", "req/s", True, None),
        ("catalog", f"catalog, {sz.repos} repos", "req/s", True, None),
        ("peak_rss", "peak RSS (VmHWM)", "MiB", False, None),
        ("peak_anon", "peak anonymous RSS (sampled 50/s)", "MiB", False, None),
    ]


# key -> [(reference, op, factor)]; reference "dist", "ceil" or "zinc:<key>" (issue 7, point 3)
TARGETS = {
    "manifest_get": [("dist", ">=", 5), ("ceil", ">=", 0.6)],
    "manifest_get_auth": [("zinc:manifest_get", ">=", 0.8)],
    "blob_get": [("ceil", ">=", 0.9)],
    "blob_get_par": [("ceil", ">=", 0.9)],
    "push_mono": [("ceil", ">=", 0.8)],
    "push_chunked": [("ceil", ">=", 0.8)],
    "skopeo_push": [("dist", "<=", 0.6)],
    "skopeo_pull": [("dist", "<=", 0.6)],
    "small_push": [("dist", ">=", 3)],
    "peak_rss": [("dist", "<=", 0.25)],
}
REF_NAMES = {"dist": "Dist", "ceil": "ceiling"}


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt(v):
    if not num(v):
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if v >= 1 else f"{v:.2g}"


def ratio(a, b):
    return a / b if num(a) and num(b) and b > 0 else None


def judge(key, cells, results):
    """'≥5× Dist: pass; ...' for the row's targets, and whether all of them passed."""
    parts, ok = [], True
    for ref, op, factor in TARGETS.get(key, []):
        if ref.startswith("zinc:"):
            base, name = results.get(ref[5:], {}).get("zinc"), "zinc " + ref[5:].replace("_", " ")
        else:
            base, name = cells.get("ceiling" if ref == "ceil" else "distribution"), REF_NAMES[ref]
        r = ratio(cells.get("zinc"), base)
        mark = "n/a" if r is None else ("pass" if (r >= factor if op == ">=" else r <= factor) else "FAIL")
        ok = ok and mark == "pass"
        parts.append(f"{'≥' if op == '>=' else '≤'}{factor:g}× {name}: {mark}")
    return "; ".join(parts), ok


def table(results, sz):
    """Markdown table (list of lines) plus footnotes for every Err cell."""
    notes, lines = [], []
    lines.append("| metric | unit | zinc | Distribution | ceiling | zinc/Dist | zinc/ceiling | target |")
    lines.append("|---|---|--:|--:|--:|--:|--:|---|")

    def cell(v):
        if isinstance(v, Err):
            if v.reason not in notes:
                notes.append(v.reason)
            return f"ERR[{notes.index(v.reason) + 1}]"
        return fmt(v)

    for key, label, unit, _, ceil_name in rows(sz):
        c = results.get(key, {})
        target, _ = judge(key, c, results)
        zc, zd = ratio(c.get("zinc"), c.get("distribution")), ratio(c.get("zinc"), c.get("ceiling"))
        ceil = cell(c.get("ceiling")) + (f" ({ceil_name})" if ceil_name and "ceiling" in c else "")
        lines.append(f"| {label} | {unit} | {cell(c.get('zinc'))} | {cell(c.get('distribution'))} | {ceil} | "
                     f"{'—' if zc is None else f'{zc:.2f}'} | {'—' if zd is None else f'{zd:.2f}'} | {target or '—'} |")
    lines.append("")
    lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    return lines


def summary(results):
    passed = failed = na = 0
    for key in TARGETS:
        text, ok = judge(key, results.get(key, {}), results)
        passed += text.count(": pass")
        failed += text.count(": FAIL")
        na += text.count(": n/a")
    return f"targets: {passed} pass, {failed} FAIL, {na} n/a"


def record(path, header, body_lines):
    """Inserts a run (header line + body) after MARKER in path, creating the file if needed."""
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if MARKER not in text:
        text = text.rstrip("\n") + ("\n\n" if text else "# zinc benchmark results\n\n") + MARKER + "\n"
    block = "\n".join([header, ""] + body_lines).rstrip("\n") + "\n\n"
    head, tail = text.split(MARKER, 1)
    tail = tail.lstrip("\n")
    with open(path + ".tmp", "w") as f:
        f.write(head + MARKER + "\n\n" + block + tail)
    os.replace(path + ".tmp", path)


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = m.group(1).strip() if m else model
    except OSError:
        pass
    return f"{os.cpu_count()} × {model}"


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
