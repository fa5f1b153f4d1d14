"""Reference batch computation of nta's window results, for end-to-end tests.

Computes by plain brute force what nta must emit for a set of records, so that
tests can compare nta's output record for record. It shares no code and no
shortcuts with the runtime: every record is put into every window that
contains it by a loop over windows, and every aggregate is computed from the
full list of a group's records.

Records are dicts: ts (epoch ms int), src_ip, dst_ip (address text),
src_port, dst_port, proto, bytes, packets, tcp_flags (ints).

A window spec is a dict:
    {"name": "by_src", "size_ms": 10000, "slide_ms": 5000,
     "key": ["src_ip"],                       # 0..2 field names
     "aggs": [("sum", "bytes"), ("distinct", "dst_port")]}
kinds: sum | min | max | mean | distinct. sum/min/max/mean need a numeric
field; distinct takes any field (addresses count by their text).

Windows are aligned like Spark's window(ts, size, slide): window k covers
[k*slide, k*slide + size) for every integer k, negative ts included.

Not modelled: nta's per-pane key limit (the "(other)" overflow bucket); keep
tests under max_keys.

Use:
    expected = nta_batch.expected(records, specs, lateness_ms=5000)
    nta_batch.assert_equal(expected, actual_results)

Run the unit tests with: /usr/bin/python3 -m unittest tests/e2e/test_nta_batch.py
"""

import datetime
import functools
import ipaddress
import math

FIELDS = ("src_ip", "dst_ip", "src_port", "dst_port", "proto", "bytes", "packets", "tcp_flags")
ADDRESS_FIELDS = ("src_ip", "dst_ip")
AGG_KINDS = ("sum", "min", "max", "mean", "distinct")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------------------
# Field values


@functools.lru_cache(maxsize=None)  # parsing dominates the run time otherwise
def address_text(text):
    """Canonical text of an address as nta prints it: dotted IPv4 (also for
    IPv4-mapped IPv6), compressed lower-case IPv6."""
    addr = ipaddress.ip_address(text.strip())
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def field_value(record, field):
    """The value a record has for a field: address text or an int."""
    if field in ADDRESS_FIELDS:
        return address_text(record[field])
    return int(record[field])


def field_text(record, field):
    """A key value as nta prints it: address text, numbers in decimal."""
    if field in ADDRESS_FIELDS:
        return address_text(record[field])
    return str(int(record[field]))


def rfc3339_ms(ms):
    """Epoch ms -> '2023-11-14T22:13:20.000Z' (UTC, exactly 3 fraction digits)."""
    t = _EPOCH + datetime.timedelta(milliseconds=ms)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond // 1000)


# ---------------------------------------------------------------------------
# Window specs


def _aggs_of(spec):
    out = []
    for agg in spec.get("aggs", []):
        if isinstance(agg, dict):
            kind, field = agg["kind"], agg["field"]
        else:
            kind, field = agg
        out.append((kind, field))
    return out


def check_spec(spec):
    """Raises ValueError for a spec this module cannot compute."""
    name = spec.get("name")
    if not name:
        raise ValueError("window spec without a name: %r" % (spec,))
    size, slide = spec.get("size_ms"), spec.get("slide_ms", spec.get("size_ms"))
    if not isinstance(size, int) or not isinstance(slide, int) or size <= 0 or slide <= 0:
        raise ValueError("%s: size_ms and slide_ms must be positive integers" % name)
    key = spec.get("key", [])
    if len(key) > 2:
        raise ValueError("%s: at most 2 key fields" % name)
    for f in key:
        if f not in FIELDS:
            raise ValueError("%s: unknown key field %r" % (name, f))
    for kind, field in _aggs_of(spec):
        if kind not in AGG_KINDS:
            raise ValueError("%s: unknown aggregate kind %r" % (name, kind))
        if field not in FIELDS:
            raise ValueError("%s: unknown aggregate field %r" % (name, field))
        if kind != "distinct" and field in ADDRESS_FIELDS:
            raise ValueError("%s: %s of an address field %r" % (name, kind, field))


def window_starts(ts, size_ms, slide_ms):
    """Starts of all windows [k*slide, k*slide+size) that contain ts, latest first."""
    starts = []
    k = ts // slide_ms  # the last window that starts at or before ts
    while k * slide_ms + size_ms > ts:
        if k * slide_ms <= ts:
            starts.append(k * slide_ms)
        k -= 1
    return starts


# ---------------------------------------------------------------------------
# Window results


def compute_window(records, spec):
    """Results of one window spec over records (order does not matter): one
    dict per (window, key) with at least one record, in nta's output format."""
    check_spec(spec)
    name = spec["name"]
    size = spec["size_ms"]
    slide = spec.get("slide_ms", size)
    key_fields = list(spec.get("key", []))
    aggs = _aggs_of(spec)

    groups = {}  # (start, key tuple) -> list of records
    for rec in records:
        key = tuple(field_text(rec, f) for f in key_fields)
        for start in window_starts(int(rec["ts"]), size, slide):
            groups.setdefault((start, key), []).append(rec)

    results = []
    for (start, key), recs in groups.items():
        res = {
            "type": "window",
            "window": name,
            "start": start,
            "end": start + size,
            "start_time": rfc3339_ms(start),
            "end_time": rfc3339_ms(start + size),
            "key": dict(zip(key_fields, key)),
            "count": len(recs),
        }
        for kind, field in aggs:
            values = [field_value(r, field) for r in recs]
            if kind == "sum":
                v = sum(values)
            elif kind == "min":
                v = min(values)
            elif kind == "max":
                v = max(values)
            elif kind == "mean":
                v = sum(values) / len(values)
            else:
                v = len(set(values))
            res["%s_%s" % (kind, field)] = v
        results.append(res)
    results.sort(key=_sort_key)
    return results


def _sort_key(res):
    return (res["end"], res["window"], sorted(res["key"].items()))


def compute(records, specs):
    """Results of every spec over the same records, ordered by window end."""
    results = []
    for spec in specs:
        results.extend(compute_window(records, spec))
    results.sort(key=_sort_key)
    return results


# ---------------------------------------------------------------------------
# Lateness


def last_closed_end(watermark, size_ms, slide_ms):
    """The largest aligned window end k*slide+size <= watermark (None for a
    watermark of None, i.e. minus infinity)."""
    if watermark is None:
        return None
    k = (watermark - size_ms) // slide_ms
    return k * slide_ms + size_ms


def late_filter(records, specs, lateness_ms):
    """Which records nta accepts, given records in arrival order.

    nta's rules: the watermark is max(ts seen so far) - lateness_ms, updated
    after each record (late or not); windows with end <= watermark are then
    emitted. A record is late for a window spec, and dropped for that spec
    only, if its ts < E, E being the largest aligned window end <= the
    watermark before the record arrived (no record is late before the first).

    Returns (accepted, late): accepted maps each spec name to its list of
    accepted records in arrival order, late maps each name to the number of
    records dropped."""
    accepted = {spec["name"]: [] for spec in specs}
    late = {spec["name"]: 0 for spec in specs}
    watermark = None
    for rec in records:
        ts = int(rec["ts"])
        for spec in specs:
            size = spec["size_ms"]
            slide = spec.get("slide_ms", size)
            edge = last_closed_end(watermark, size, slide)
            if edge is not None and ts < edge:
                late[spec["name"]] += 1
            else:
                accepted[spec["name"]].append(rec)
        if watermark is None or ts - lateness_ms > watermark:
            watermark = ts - lateness_ms
    return accepted, late


def expected(records, specs, lateness_ms=None):
    """All results nta must produce for records in arrival order (including
    the final flush at end of input). lateness_ms=None: nothing is late."""
    if lateness_ms is None:
        return compute(records, specs)
    accepted, _ = late_filter(records, specs, lateness_ms)
    results = []
    for spec in specs:
        results.extend(compute_window(accepted[spec["name"]], spec))
    results.sort(key=_sort_key)
    return results


# ---------------------------------------------------------------------------
# Comparison

_IDENTITY = ("window", "start", "key")


def _ident(res):
    """(window, start, key) of a result, hashable whatever the input holds."""
    if not isinstance(res, dict):
        return ("<not an object>", repr(res), ())
    key = res.get("key")
    if isinstance(key, dict):
        key = tuple(sorted((str(k), v if isinstance(v, str) else repr(v)) for k, v in key.items()))
    else:
        key = ("<key not an object>", repr(key))
    return (res.get("window"), res.get("start"), key)


def _show_ident(ident):
    window, start, key = ident
    key_text = ",".join("%s=%s" % kv for kv in key) if key and isinstance(key[0], tuple) else repr(key)
    return "%s start=%s key={%s}" % (window, start, key_text)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Report:
    """Outcome of compare(): the differences found and the worst relative
    error of the distinct estimates among matched results."""

    def __init__(self):
        self.n_expected = 0
        self.n_actual = 0
        self.n_matched = 0
        self.missing = []      # expected results absent from actual
        self.unexpected = []   # actual results not expected
        self.duplicates = []   # (side, identity, times)
        self.mismatches = []   # readable lines, one per differing field
        self.worst_distinct_rel_err = 0.0
        self.worst_distinct_where = None

    @property
    def ok(self):
        return not (self.missing or self.unexpected or self.duplicates or self.mismatches)

    def differences(self):
        """Every difference as one readable line."""
        lines = []
        for side, ident, times in self.duplicates:
            lines.append("duplicate in %s (%d times): %s" % (side, times, _show_ident(ident)))
        for res in self.missing:
            lines.append("missing: %s count=%s" % (_show_ident(_ident(res)), res.get("count")))
        for res in self.unexpected:
            lines.append("unexpected: %s count=%s" % (
                _show_ident(_ident(res)), res.get("count") if isinstance(res, dict) else None))
        lines.extend(self.mismatches)
        return lines

    def format(self, limit=10):
        diffs = self.differences()
        head = "expected %d results, actual %d, matched %d; %d differences" % (
            self.n_expected, self.n_actual, self.n_matched, len(diffs))
        if self.worst_distinct_where is not None:
            head += "; worst distinct error %.4f (%s)" % (
                self.worst_distinct_rel_err, self.worst_distinct_where)
        lines = [head] + ["  " + d for d in diffs[:limit]]
        if len(diffs) > limit:
            lines.append("  ... and %d more" % (len(diffs) - limit))
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def compare(expected_results, actual_results, distinct_rel_tol=0.03, mean_rel_tol=1e-9,
            ignore_fields=()):
    """Matches results by (window, start, key) and checks every field of the
    expected result: count, sum, min, max and all other fields exactly, mean
    within mean_rel_tol relative, distinct within distinct_rel_tol relative
    (nta estimates it with HyperLogLog). A field of an actual result that the
    expected one lacks is a difference unless named in ignore_fields.
    Returns a Report."""
    rep = Report()
    rep.n_expected = len(expected_results)
    rep.n_actual = len(actual_results)

    def index(results, side):
        by_ident, counts = {}, {}
        for res in results:
            ident = _ident(res)
            counts[ident] = counts.get(ident, 0) + 1
            by_ident.setdefault(ident, res)
        for ident, times in counts.items():
            if times > 1:
                rep.duplicates.append((side, ident, times))
        return by_ident

    exp = index(expected_results, "expected")
    act = index(actual_results, "actual")

    for ident, e in exp.items():
        a = act.get(ident)
        if a is None:
            rep.missing.append(e)
            continue
        rep.n_matched += 1
        where = _show_ident(ident)
        for field, ev in e.items():
            if field in _IDENTITY:
                continue
            if field not in a:
                rep.mismatches.append("%s: field %s missing (expected %r)" % (where, field, ev))
                continue
            av = a[field]
            if field.startswith("mean_"):
                good = _is_number(av) and math.isclose(av, ev, rel_tol=mean_rel_tol, abs_tol=1e-12)
            elif field.startswith("distinct_"):
                good = _is_number(av)
                if good:
                    err = abs(av - ev) / max(ev, 1)
                    if rep.worst_distinct_where is None or err > rep.worst_distinct_rel_err:
                        rep.worst_distinct_rel_err = err
                        rep.worst_distinct_where = "%s %s: expected %s, got %s" % (where, field, ev, av)
                    good = err <= distinct_rel_tol
            elif _is_number(ev):
                good = _is_number(av) and av == ev
            else:
                good = type(av) is type(ev) and av == ev
            if not good:
                rep.mismatches.append("%s: %s expected %r, got %r" % (where, field, ev, av))
        for field in a:
            if field not in e and field not in ignore_fields:
                rep.mismatches.append("%s: unexpected field %s=%r" % (where, field, a[field]))

    for ident, a in act.items():
        if ident not in exp:
            rep.unexpected.append(a)
    return rep


def assert_equal(expected_results, actual_results, distinct_rel_tol=0.03, **kwargs):
    """compare(), raising AssertionError with the first 10 differences."""
    rep = compare(expected_results, actual_results, distinct_rel_tol=distinct_rel_tol, **kwargs)
    if not rep.ok:
        raise AssertionError("nta results differ from the batch computation:\n" + rep.format(10))
    return rep
