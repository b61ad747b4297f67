//! Client catalog queries the engine cannot plan as written, rewritten into equivalent
//! ones it can (PostgreSQL door only).
//!
//! BI tools and ORMs (SQLAlchemy's column reflection, which Superset and Metabase use)
//! read `pg_catalog` with correlated scalar subqueries such as
//! `CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
//! WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) END`. The engine decorrelates a
//! scalar subquery only when it aggregates, and not at all in the branch of a `CASE`.
//! Three rewrites, each exact, apply to scalar subqueries that read only `pg_catalog`
//! tables (analysts' queries over the warehouse's tables are never touched):
//!
//! 0. A subquery that reads `pg_attrdef` or `pg_sequence`, which this server keeps
//!    empty (a read-only warehouse has no column defaults and no sequences), is NULL.
//!
//! 1. `(SELECT x FROM … WHERE w)` becomes `(SELECT max(x) FROM … WHERE w)`. A scalar
//!    subquery answers at most one row (PostgreSQL raises an error otherwise; these
//!    subqueries look rows up by the catalog's keys), and the maximum of at most one
//!    value is that value, or NULL for none: the answer is the same.
//! 2. `CASE WHEN c THEN (SELECT max(x) FROM … WHERE w) [ELSE NULL] END` becomes
//!    `(SELECT max(x) FROM … WHERE (c) AND (w))`: when `c` does not hold the subquery
//!    reads no row and its maximum is NULL, which is what the `CASE` answered. When `c`
//!    itself holds a subquery (which cannot be nested in another), it becomes
//!    `make_array(NULL, (SELECT max(x) …))[CASE WHEN c THEN 2 ELSE 1 END]`: the
//!    subquery's answer when `c` holds, NULL otherwise.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Query, SelectItem, SetExpr, Statement, TableFactor, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrite the catalog subqueries of `statement` (see the module's documentation).
pub fn catalog_subqueries(statement: &mut Statement) {
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(statement, |e: &mut Expr| {
        match e {
            Expr::Subquery(q) if reads_catalog_only(q) && reads_empty_catalog(q) => {
                *e = null_keeping_placeholders(q);
            }
            Expr::Subquery(q) => aggregate(q),
            Expr::Case {
                operand: None,
                conditions,
                else_result,
                ..
            } if conditions.len() == 1 && else_result.as_deref().is_none_or(is_null) => {
                let when = &conditions[0];
                if let Some(q) = catalog_subquery(&when.result) {
                    if aggregated(q) && has_subquery(&when.condition) {
                        // a subquery in the condition cannot move into the other one
                        // (the engine does not decorrelate nested subqueries): pick the
                        // answer from a pair instead, which needs no CASE around it
                        let text = format!(
                            "make_array(NULL, ({q}))[CASE WHEN {} THEN 2 ELSE 1 END]",
                            when.condition
                        );
                        if let Some(picked) = parse_expr(&text) {
                            *e = picked;
                        }
                    } else if aggregated(q) {
                        let mut q = Box::new(q.clone());
                        if let SetExpr::Select(s) = q.body.as_mut() {
                            let c = Expr::Nested(Box::new(when.condition.clone()));
                            s.selection = Some(match s.selection.take() {
                                Some(w) => Expr::BinaryOp {
                                    left: Box::new(c),
                                    op: BinaryOperator::And,
                                    right: Box::new(Expr::Nested(Box::new(w))),
                                },
                                None => c,
                            });
                        }
                        *e = Expr::Subquery(q);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether `e` holds a subquery anywhere.
fn has_subquery(e: &Expr) -> bool {
    datafusion::sql::sqlparser::ast::visit_expressions(e, |x: &Expr| {
        if matches!(
            x,
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
        ) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

fn is_null(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if v.value == Value::Null)
}

/// The subquery of `e` (bare or in parentheses) if it is a catalog subquery.
fn catalog_subquery(e: &Expr) -> Option<&Query> {
    match e {
        Expr::Subquery(q) if reads_catalog_only(q) => Some(q.as_ref()),
        Expr::Nested(inner) => catalog_subquery(inner),
        _ => None,
    }
}

/// A plain `SELECT` of one item (no grouping, DISTINCT, ORDER BY or LIMIT) whose tables
/// are all `pg_catalog` tables.
fn reads_catalog_only(q: &Query) -> bool {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return false;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    let plain = s.projection.len() == 1
        && s.distinct.is_none()
        && s.having.is_none()
        && matches!(&s.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty());
    let tables: Vec<&TableFactor> = s
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .collect();
    plain
        && !tables.is_empty()
        && tables.iter().all(|t| match t {
            TableFactor::Table {
                name, args: None, ..
            } => {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(|i| i.value.to_lowercase()))
                    .collect();
                match parts.as_slice() {
                    [table] => table.starts_with("pg_"),
                    [schema, table] => schema == "pg_catalog" && table.starts_with("pg_"),
                    _ => false,
                }
            }
            _ => false,
        })
}

/// Catalog tables this server keeps empty: a read-only warehouse has no column
/// defaults and no sequences.
const EMPTY_CATALOGS: [&str; 2] = ["pg_attrdef", "pg_sequence"];

/// Whether a catalog subquery reads (inner-joins) one of [`EMPTY_CATALOGS`]: it then
/// answers no row, so NULL.
fn reads_empty_catalog(q: &Query) -> bool {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    let empty = |t: &TableFactor| match t {
        TableFactor::Table { name, .. } => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| EMPTY_CATALOGS.contains(&i.value.to_lowercase().as_str())),
        _ => false,
    };
    s.from.len() == 1
        && s.from.iter().all(|t| {
            empty(&t.relation)
                && t.joins.iter().all(|j| {
                    matches!(
                        j.join_operator,
                        datafusion::sql::sqlparser::ast::JoinOperator::Inner(_)
                            | datafusion::sql::sqlparser::ast::JoinOperator::Join(_)
                    )
                })
        })
}

/// NULL, still naming the `$n` placeholders of the query it replaces: a client binds
/// every parameter it wrote, and the server reads the parameters' types off the plan.
fn null_keeping_placeholders(q: &Query) -> Expr {
    let mut kept: Vec<String> = Vec::new();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(q, |x: &Expr| {
        match x {
            Expr::Cast { expr, .. } if matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, Value::Placeholder(_))) =>
            {
                kept.push(x.to_string());
            }
            Expr::Value(v) => {
                if let Value::Placeholder(p) = &v.value {
                    if !kept.iter().any(|k| k.starts_with(p.as_str())) {
                        kept.push(p.clone());
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    if kept.is_empty() {
        return Expr::Value(Value::Null.into());
    }
    let test: Vec<String> = kept.iter().map(|k| format!("({k}) IS NULL")).collect();
    parse_expr(&format!(
        "CASE WHEN {} THEN NULL ELSE NULL END",
        test.join(" AND ")
    ))
    .unwrap_or(Expr::Value(Value::Null.into()))
}

/// Whether the one item of a catalog subquery is already an aggregate.
fn aggregated(q: &Query) -> bool {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    let item = match s.projection.first() {
        Some(SelectItem::UnnamedExpr(e)) | Some(SelectItem::ExprWithAlias { expr: e, .. }) => e,
        _ => return false,
    };
    matches!(item, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("max"))
}

/// Rewrite 1: the one item of a catalog subquery wrapped in `max(…)`.
fn aggregate(q: &mut Box<Query>) {
    if !reads_catalog_only(q) || aggregated(q) {
        return;
    }
    let SetExpr::Select(s) = q.body.as_mut() else {
        return;
    };
    let item = match s.projection.first_mut() {
        Some(SelectItem::UnnamedExpr(e)) | Some(SelectItem::ExprWithAlias { expr: e, .. }) => e,
        _ => return,
    };
    if let Some(wrapped) = parse_expr(&format!("max({item})")) {
        *item = wrapped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("sql")
            .remove(0);
        catalog_subqueries(&mut s);
        s.to_string()
    }

    #[test]
    fn catalog_subqueries_are_aggregated_and_case_branches_folded_in() {
        assert_eq!(
            rewrite(
                "SELECT CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) \
                 FROM pg_catalog.pg_depend d WHERE d.adrelid = a.attrelid) ELSE NULL END \
                 FROM pg_catalog.pg_attribute a"
            ),
            "SELECT (SELECT max(pg_get_expr(d.adbin, d.adrelid)) FROM pg_catalog.pg_depend d \
             WHERE (a.atthasdef) AND (d.adrelid = a.attrelid)) FROM pg_catalog.pg_attribute a"
        );
        // the defaults' catalog is empty here: its lookup is NULL
        assert_eq!(
            rewrite(
                "SELECT CASE WHEN a.atthasdef THEN (SELECT pg_get_expr(d.adbin, d.adrelid) \
                 FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid) ELSE NULL END \
                 FROM pg_catalog.pg_attribute a"
            ),
            "SELECT CASE WHEN a.atthasdef THEN NULL ELSE NULL END FROM pg_catalog.pg_attribute a"
        );
        assert_eq!(
            rewrite("SELECT (SELECT typcollation FROM pg_type t WHERE t.oid = a.atttypid) FROM pg_attribute a"),
            "SELECT (SELECT max(typcollation) FROM pg_type t WHERE t.oid = a.atttypid) FROM pg_attribute a"
        );
    }

    #[test]
    fn a_condition_with_a_subquery_picks_from_a_pair() {
        assert_eq!(
            rewrite(
                "SELECT CASE WHEN (SELECT typcollation FROM pg_type t WHERE t.oid = a.atttypid) \
                 != a.attcollation THEN (SELECT collname FROM pg_collation c WHERE c.oid = \
                 a.attcollation) ELSE NULL END FROM pg_attribute a"
            ),
            "SELECT make_array(NULL, (SELECT max(collname) FROM pg_collation c WHERE c.oid = \
             a.attcollation))[CASE WHEN (SELECT max(typcollation) FROM pg_type t WHERE t.oid = \
             a.atttypid) <> a.attcollation THEN 2 ELSE 1 END] FROM pg_attribute a"
        );
    }

    #[test]
    fn queries_over_the_warehouse_are_left_alone() {
        for sql in [
            "SELECT (SELECT commune_code FROM dossiers d WHERE d.dossier_id = e.dossier_id) FROM events e",
            "SELECT CASE WHEN x THEN (SELECT 1 FROM events) END FROM events",
            "SELECT (SELECT a FROM pg_catalog.pg_class ORDER BY 1 LIMIT 1)",
            "SELECT CASE WHEN x THEN (SELECT max(oid) FROM pg_class) ELSE 1 END FROM t",
        ] {
            assert_eq!(rewrite(sql), sql);
        }
    }
}
