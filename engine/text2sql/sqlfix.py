"""Schema-aware fixes for the two mistakes a small model makes most, done by a SQL parser instead of the model.

Measured on the dev questions (few-shot + linking + value hints, Qwen2.5-Coder-0.5B): a quarter of the failures were
SQL that names a table it never joined —

    SELECT count(*) FROM Album WHERE Artist.Name = 'Aerosmith'          -- no such column: Artist.Name

— and the model's own repair, shown SQLite's error, mostly wrote the same SQL again or answered another question.
The foreign keys already say how Album reaches Artist, so the join can be added without asking the model:

    SELECT count(*) FROM Album JOIN Artist ON Album.ArtistId = Artist.ArtistId WHERE Artist.Name = 'Aerosmith'

and MySQL's `YEAR(x)` (SQLite has none: "no such function: YEAR") becomes `CAST(strftime('%Y', x) AS INTEGER)`.
The SQL is parsed and rewritten with sqlglot (a maintained SQL parser and transpiler); a query it cannot parse, or
one with subqueries or set operations (where "the" FROM clause is ambiguous), is left to the model's repair.
The fix is only a candidate: the strategy executes it like any other SQL and keeps it only if it runs.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache

from engine.text2sql.databases import Database, connect_readonly


@lru_cache(maxsize=16)
def foreign_keys(db: Database) -> tuple[tuple[str, str, str, str], ...]:
    """(table, column, referenced table, referenced column) for every foreign key, read from SQLite itself
    (`pragma_foreign_key_list`, on a read-only connection) so any DDL spelling works."""
    out = []
    with contextlib.closing(connect_readonly(db.path)) as conn:
        for table in db.tables:
            rows = conn.execute('SELECT "table", "from", "to" FROM pragma_foreign_key_list(?)', (table,))
            for ref, col, to in rows.fetchall():
                target = next((t for t in db.tables if t.lower() == str(ref).lower()), None)
                if target and col:
                    to_col = to or (db.tables[target][0] if db.tables[target] else col)
                    out.append((table, col, target, to_col))
    return tuple(out)


def _join_path(db: Database, present: set[str], goal: str) -> list[tuple[str, str, str, str]] | None:
    """The shortest chain of foreign keys from any present table to `goal`: [(from table, col, to table, col)]."""
    edges: dict[str, list[tuple[str, str, str, str]]] = {}
    for a, ca, b, cb in foreign_keys(db):
        edges.setdefault(a, []).append((a, ca, b, cb))
        edges.setdefault(b, []).append((b, cb, a, ca))
    prev: dict[str, tuple[str, str, str, str] | None] = {t: None for t in sorted(present)}
    queue = sorted(present)
    while queue:
        node = queue.pop(0)
        if node == goal:
            break
        for edge in edges.get(node, []):
            if edge[2] not in prev:
                prev[edge[2]] = edge
                queue.append(edge[2])
    if goal not in prev:
        return None
    path = []
    node = goal
    while prev[node] is not None:
        edge = prev[node]
        path.append(edge)
        node = edge[0]
    return path[::-1]


def fix_sql(db: Database, sql: str) -> str | None:
    """A rewritten SQL that adds the joins the query's qualified columns need and replaces YEAR(); None when there
    is nothing this can fix."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except Exception:  # sqlglot's ParseError/TokenError: not SQL it understands
        return None
    if not isinstance(tree, exp.Select):
        return None
    changed = False
    for year in list(tree.find_all(exp.Year)):
        year.replace(exp.cast(exp.func("strftime", exp.Literal.string("%Y"), year.this), "INTEGER"))
        changed = True
    if len(list(tree.find_all(exp.Select))) == 1 and not tree.find(exp.Union, exp.Intersect, exp.Except):
        names = {t.lower(): t for t in db.tables}
        present: dict[str, str] = {}  # name or alias (lower) -> table
        for table in tree.find_all(exp.Table):
            real = names.get(table.name.lower())
            if real:
                present[table.name.lower()] = real
                if table.alias:
                    present[table.alias.lower()] = real
        missing = []
        output_names = {e.alias.lower() for e in tree.expressions if e.alias}
        for column in tree.find_all(exp.Column):
            qualifier = column.table.lower()
            if qualifier:
                if qualifier not in present and qualifier in names and names[qualifier] not in missing:
                    missing.append(names[qualifier])
                continue
            # an unqualified column no joined table has (`sum(Milliseconds) FROM PlaylistTrack`): the one table
            # that has it, if exactly one does
            col = column.name.lower()
            if col in output_names or any(col in map(str.lower, db.tables[t]) for t in present.values()):
                continue
            owners = [t for t, cols in db.tables.items() if col in map(str.lower, cols)]
            if len(owners) == 1 and owners[0] not in missing:
                missing.append(owners[0])
        if missing and present:
            alias_of = {}  # a joined table is referred to by its alias when it has one
            for table in tree.find_all(exp.Table):
                if table.name.lower() in names:
                    alias_of.setdefault(names[table.name.lower()], table.alias or table.name)
            for goal in missing:
                path = _join_path(db, set(present.values()), goal)
                if path is None:
                    return None
                for a, ca, b, cb in path:
                    left = alias_of.get(a, a)
                    tree = tree.join(b, on=f"{left}.{ca} = {b}.{cb}")
                    alias_of.setdefault(b, b)
                    present[b.lower()] = b
                changed = True
    if not changed:
        return None
    return tree.sql(dialect="sqlite")
