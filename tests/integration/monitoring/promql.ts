/**
 * Test support: the metric names a PromQL expression reads. Not a parser: it removes strings,
 * label matchers, ranges and grouping clauses, then keeps the identifiers that are not function
 * or aggregation calls and not keywords. `{__name__="x"}` / `{__name__=~"re"}` selectors are
 * reported separately. tests/unit/monitoring/promql.test.ts pins its behaviour.
 */

const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2"]);

export interface MetricRefs {
    /** Plain metric names. */
    names: Set<string>;
    /** Regexes from `__name__=~"..."` (anchored like Prometheus: full match). */
    nameRegexes: string[];
}

export function metricRefs(expr: string): MetricRefs {
    const names = new Set<string>();
    const nameRegexes: string[] = [];
    for (const m of expr.matchAll(/__name__\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
        if (m[1] === "=") names.add(m[2]);
        else nameRegexes.push(m[2]);
    }
    let e = expr
        .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
        .replace(/\{[^}]*\}/g, " ")
        .replace(/\[[^\]]*\]/g, " ");
    e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
    for (const m of e.matchAll(/(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)/g)) {
        const id = m[1];
        const rest = e.slice((m.index ?? 0) + id.length);
        if (/^\s*\(/.test(rest)) continue; // function or aggregation
        if (KEYWORDS.has(id.toLowerCase())) continue;
        names.add(id);
    }
    return { names, nameRegexes };
}
