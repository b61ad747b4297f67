//! Bounds on what an analyst's SQL may ask the planner to do.
//!
//! The planner and the optimizer walk the query recursively, so a few kilobytes of SQL
//! (`1+1+…+1`, `a OR b OR …`, thousands of `UNION ALL`) could make a tree deep enough
//! to overflow a thread's stack, and a very wide one (tens of thousands of select
//! items) keeps a core busy for minutes where no time limit can stop it. Every
//! statement is therefore measured on its syntax tree before it is planned: its length,
//! the nesting depth of its expressions and subqueries, the number of expressions, the
//! length of each `IN (…)` list, the number of set operations, of tables and of select
//! items. Past a limit the statement is refused with a message naming that limit.
//!
//! Measuring walks the tree too, so [`plan`] parses, measures and plans on a thread
//! with a large stack (`PLAN_STACK_BYTES`); within the limits every query plans and
//! runs on ordinary stacks.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::SessionState;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, Select, SetExpr, TableFactor, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use serde::{Deserialize, Serialize};

use crate::QueryError;

/// Stack of the thread that parses, measures and plans one statement.
pub const PLAN_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Limits of one SQL statement (`[sql]` in the server configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SqlLimits {
    /// Length of the statement in bytes.
    pub max_sql_bytes: usize,
    /// Nesting of expressions and subqueries (`1+1+1` is 3 deep: a chain of binary
    /// operators nests on the left).
    pub max_depth: usize,
    /// Expressions in the whole statement (every operand, literal and column counts).
    pub max_expressions: usize,
    /// Items of one `IN (…)` list.
    pub max_in_list: usize,
    /// `UNION`, `INTERSECT` and `EXCEPT` in the whole statement.
    pub max_set_operations: usize,
    /// Tables, subqueries in `FROM` and table functions in the whole statement.
    pub max_tables: usize,
    /// Items of one select list.
    pub max_select_items: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_sql_bytes: 256 * 1024,
            max_depth: 128,
            max_expressions: 20_000,
            max_in_list: 5_000,
            max_set_operations: 100,
            max_tables: 32,
            max_select_items: 1_000,
        }
    }
}

/// Which limit a statement broke (a 400, exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("câu SQL dài {0} byte, vượt giới hạn {1} byte (max_sql_bytes)")]
    Length(usize, usize),
    #[error("biểu thức hoặc truy vấn con lồng nhau quá {0} cấp (max_depth)")]
    Depth(usize),
    #[error("câu SQL có hơn {0} biểu thức (max_expressions)")]
    Expressions(usize),
    #[error("danh sách IN có {0} phần tử, vượt giới hạn {1} (max_in_list)")]
    InList(usize, usize),
    #[error("câu SQL có hơn {0} phép UNION/INTERSECT/EXCEPT (max_set_operations)")]
    SetOperations(usize),
    #[error("câu SQL đọc hơn {0} bảng hoặc truy vấn con trong FROM (max_tables)")]
    Tables(usize),
    #[error("danh sách SELECT có {0} cột, vượt giới hạn {1} (max_select_items)")]
    SelectItems(usize, usize),
    #[error("chỉ được gửi một câu lệnh SQL")]
    NotOneStatement,
}

struct Meter<'a> {
    limits: &'a SqlLimits,
    depth: usize,
    expressions: usize,
    set_operations: usize,
    tables: usize,
}

impl Meter<'_> {
    fn enter(&mut self) -> ControlFlow<LimitExceeded> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return ControlFlow::Break(LimitExceeded::Depth(self.limits.max_depth));
        }
        ControlFlow::Continue(())
    }
}

/// Set operations directly in a query body (nested queries are measured on their own).
fn set_operations(body: &SetExpr) -> usize {
    let mut n = 0;
    let mut stack = vec![body];
    while let Some(s) = stack.pop() {
        if let SetExpr::SetOperation { left, right, .. } = s {
            n += 1;
            stack.push(left);
            stack.push(right);
        }
    }
    n
}

impl Visitor for Meter<'_> {
    type Break = LimitExceeded;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<LimitExceeded> {
        // counted before the visitor descends into a long chain of set operations
        self.set_operations += set_operations(&query.body);
        if self.set_operations > self.limits.max_set_operations {
            return ControlFlow::Break(LimitExceeded::SetOperations(
                self.limits.max_set_operations,
            ));
        }
        self.enter()
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<LimitExceeded> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<LimitExceeded> {
        let n = select.projection.len();
        if n > self.limits.max_select_items {
            return ControlFlow::Break(LimitExceeded::SelectItems(n, self.limits.max_select_items));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _t: &TableFactor) -> ControlFlow<LimitExceeded> {
        self.tables += 1;
        if self.tables > self.limits.max_tables {
            return ControlFlow::Break(LimitExceeded::Tables(self.limits.max_tables));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<LimitExceeded> {
        self.expressions += 1;
        if self.expressions > self.limits.max_expressions {
            return ControlFlow::Break(LimitExceeded::Expressions(self.limits.max_expressions));
        }
        if let Expr::InList { list, .. } = expr {
            if list.len() > self.limits.max_in_list {
                return ControlFlow::Break(LimitExceeded::InList(
                    list.len(),
                    self.limits.max_in_list,
                ));
            }
        }
        self.enter()
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<LimitExceeded> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Measure a parsed statement against `limits`.
pub fn check(statement: &DFStatement, limits: &SqlLimits) -> Result<(), LimitExceeded> {
    let mut meter = Meter {
        limits,
        depth: 0,
        expressions: 0,
        set_operations: 0,
        tables: 0,
    };
    let mut next = Some(statement);
    while let Some(s) = next.take() {
        match s {
            DFStatement::Statement(s) => {
                if let ControlFlow::Break(e) = s.visit(&mut meter) {
                    return Err(e);
                }
            }
            DFStatement::Explain(e) => next = Some(&e.statement),
            // COPY and DDL are refused by the planner's options anyway
            _ => {}
        }
    }
    Ok(())
}

/// Parse one statement and measure it (on the caller's thread: see [`plan`]).
pub fn parse(
    state: &SessionState,
    sql: &str,
    limits: &SqlLimits,
) -> Result<DFStatement, QueryError> {
    if sql.len() > limits.max_sql_bytes {
        return Err(QueryError::Limit(LimitExceeded::Length(
            sql.len(),
            limits.max_sql_bytes,
        )));
    }
    let options = state.config().options();
    let name = options.sql_parser.dialect.to_string();
    let dialect = dialect_from_str(&name)
        .ok_or_else(|| QueryError::BadInput(format!("phương ngữ SQL không hỗ trợ: {name}")))?;
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(dialect.as_ref())
        .with_recursion_limit(options.sql_parser.recursion_limit.get())
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| QueryError::BadInput(format!("SQL không hợp lệ: {e}")))?;
    if statements.len() != 1 {
        return Err(QueryError::Limit(LimitExceeded::NotOneStatement));
    }
    let statement = statements
        .pop_front()
        .ok_or(QueryError::Limit(LimitExceeded::NotOneStatement))?;
    check(&statement, limits).map_err(QueryError::Limit)?;
    Ok(statement)
}

/// What [`plan`] allows besides a read-only query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// `EXPLAIN` and `EXPLAIN ANALYZE` (an unrestricted caller).
    Any,
    /// `EXPLAIN` only: `EXPLAIN ANALYZE` would count the rows read below the scope.
    PlanOnly,
}

/// What to plan, and within which bounds.
#[derive(Debug, Clone)]
pub struct Request {
    pub sql: String,
    pub limits: SqlLimits,
    pub explain: Explain,
    /// At most that many rows are produced (not applied to `EXPLAIN`).
    pub max_rows: Option<usize>,
    /// Past it the plan stops ([`crate::deadline`]).
    pub deadline: Option<std::time::Instant>,
    /// Values of the statement's `$n` placeholders (a prepared statement's parameters),
    /// each cast to the type the plan expects where it knows one.
    pub params: Option<Vec<ScalarValue>>,
}

/// A read-only query, parsed, measured and planned (logical and physical) on a thread
/// of its own with a large stack, so that neither a deep statement nor a long planning
/// holds up an async worker or the stack of one. DDL, DML, `COPY` and statements
/// (`SET`, transactions) are refused.
pub async fn plan(ctx: &SessionContext, request: Request) -> Result<Planned, QueryError> {
    on_plan_thread(ctx, move |ctx, gone| async move {
        plan_here(&ctx, &request, &gone).await
    })
    .await
}

/// What a statement answers and asks, without running it: the schema of its rows and
/// the types of its `$n` placeholders (in order; `None` where the plan does not tell).
#[derive(Debug, Clone)]
pub struct Described {
    pub schema: datafusion::arrow::datatypes::SchemaRef,
    pub params: Vec<Option<DataType>>,
}

/// Parse, measure and plan `sql` (logically only) on a planning thread: see [`plan`].
pub async fn describe(
    ctx: &SessionContext,
    sql: String,
    limits: SqlLimits,
) -> Result<Described, QueryError> {
    on_plan_thread(ctx, move |ctx, _gone| async move {
        let state = ctx.state();
        let statement = parse(&state, &sql, &limits)?;
        let plan = logical(&state, statement).await?;
        let mut types: Vec<(usize, Option<DataType>)> = plan
            .get_parameter_types()
            .map_err(refused)?
            .into_iter()
            .map(|(name, t)| {
                let n = name.trim_start_matches('$').parse::<usize>().map_err(|_| {
                    QueryError::BadInput(format!(
                        "tham số {name}: chỉ dùng tham số theo thứ tự $1, $2, …"
                    ))
                })?;
                Ok((n, t))
            })
            .collect::<Result<_, QueryError>>()?;
        types.sort_by_key(|(n, _)| *n);
        Ok(Described {
            schema: Arc::new(plan.schema().as_arrow().clone()),
            params: types.into_iter().map(|(_, t)| t).collect(),
        })
    })
    .await
}

/// Run `work` on a thread of its own with a large stack ([`PLAN_STACK_BYTES`]); `work`
/// is told whether the caller is gone (time limit), to stop at its next phase.
async fn on_plan_thread<T, F, Fut>(ctx: &SessionContext, work: F) -> Result<T, QueryError>
where
    T: Send + 'static,
    F: FnOnce(SessionContext, Box<dyn Fn() -> bool>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, QueryError>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, QueryError>>();
    let ctx = ctx.clone();
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("giamsat-plan".into())
        .stack_size(PLAN_STACK_BYTES)
        .spawn(move || {
            let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
            let probe = tx.clone();
            let gone: Box<dyn Fn() -> bool> = Box::new(move || {
                probe
                    .lock()
                    .map(|t| t.as_ref().is_none_or(|t| t.is_closed()))
                    .unwrap_or(true)
            });
            let r = handle.block_on(work(ctx, gone));
            if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(r);
            }
        })
        .map_err(|e| QueryError::Internal(format!("không tạo được luồng lập kế hoạch: {e}")))?;
    rx.await
        .map_err(|_| QueryError::Internal("luồng lập kế hoạch truy vấn bị dừng".into()))?
}

/// A planned query, ready to run (see [`Planned::collect`]).
pub struct Planned {
    pub plan: Arc<dyn ExecutionPlan>,
    pub task: Arc<TaskContext>,
    /// `EXPLAIN`: the answer is the plan, not rows.
    pub is_explain: bool,
}

impl Planned {
    /// Run to the end. Dropping the future stops the work (every task of the plan is
    /// aborted with it).
    pub async fn collect(self) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(datafusion::physical_plan::collect(self.plan, self.task).await?)
    }

    /// Run as a stream of batches, for an answer too large to hold at once. Dropping
    /// the stream stops the work.
    pub fn stream(self) -> Result<datafusion::execution::SendableRecordBatchStream, QueryError> {
        Ok(datafusion::physical_plan::execute_stream(
            self.plan, self.task,
        )?)
    }
}

fn refused(e: impl std::fmt::Display) -> QueryError {
    QueryError::BadInput(format!("SQL không hợp lệ hoặc không được phép: {e}"))
}

async fn plan_here(
    ctx: &SessionContext,
    request: &Request,
    gone: &dyn Fn() -> bool,
) -> Result<Planned, QueryError> {
    let Request {
        sql,
        limits,
        explain,
        max_rows,
        deadline,
        params,
    } = request;
    // the caller gone (time limit): stop before the next phase
    let go_on = || {
        if gone() {
            Err(QueryError::Internal("lập kế hoạch truy vấn bị dừng".into()))
        } else {
            Ok(())
        }
    };
    let state = ctx.state();
    let statement = parse(&state, sql, limits)?;
    go_on()?;
    let mut plan = logical(&state, statement).await?;
    if let Some(values) = params {
        plan = bind(plan, values)?;
    }
    go_on()?;
    physical(&state, plan, *explain, *max_rows, *deadline).await
}

/// `plan` with its `$1`, `$2`, … replaced by `values`, each cast to the type the plan
/// expects where it knows one (a client may send `large_utf8` for a `utf8` column).
pub fn bind(plan: LogicalPlan, values: &[ScalarValue]) -> Result<LogicalPlan, QueryError> {
    let bad =
        |e: &dyn std::fmt::Display| QueryError::BadInput(format!("tham số không hợp lệ: {e}"));
    let types = plan.get_parameter_types().map_err(|e| bad(&e))?;
    let mut cast = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let want = types.get(&format!("${}", i + 1)).cloned().flatten();
        cast.push(match want {
            Some(t) if !v.is_null() && v.data_type() != t => v
                .cast_to(&t)
                .map_err(|e| bad(&format!("${}: {e}", i + 1)))?,
            Some(t) if v.is_null() => ScalarValue::try_from(&t).map_err(|e| bad(&e))?,
            _ => v.clone(),
        });
    }
    plan.replace_params_with_values(&ParamValues::from(cast))
        .map_err(|e| bad(&e))
}

/// The logical plan of a measured statement, refused unless it only reads (no DDL, no
/// DML, no `COPY`, no `SET` or transaction statement). The plan may hold `$n`
/// placeholders, bound by [`physical`]'s caller with `replace_params_with_values`.
pub async fn logical(
    state: &SessionState,
    statement: DFStatement,
) -> Result<LogicalPlan, QueryError> {
    let plan = state.statement_to_plan(statement).await.map_err(refused)?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(refused)?;
    Ok(plan)
}

/// The physical plan of a read-only logical plan ([`logical`]), with at most
/// `max_rows` rows and stopped at `deadline`.
pub async fn physical(
    state: &SessionState,
    plan: LogicalPlan,
    explain: Explain,
    max_rows: Option<usize>,
    deadline: Option<std::time::Instant>,
) -> Result<Planned, QueryError> {
    // checked again: the caller may have built the plan elsewhere
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(refused)?;
    let is_explain = match &plan {
        LogicalPlan::Analyze(_) if explain == Explain::PlanOnly => {
            return Err(QueryError::BadInput(
                "EXPLAIN ANALYZE chỉ dành cho mã truy cập không giới hạn địa bàn; dùng EXPLAIN"
                    .into(),
            ))
        }
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => true,
        _ => false,
    };
    // a verified plan has no DDL or statement for the context to carry out
    let mut df = DataFrame::new(state.clone(), plan);
    if let (Some(n), false) = (max_rows, is_explain) {
        df = df.limit(0, Some(n)).map_err(refused)?;
    }
    let task = Arc::new(df.task_ctx());
    // physical planning optimizes (folds the statement's constants) and plans the
    // scans: its errors come from the statement, or are ours (storage, bugs)
    let plan = df.create_physical_plan().await.map_err(|e| {
        let busy = matches!(
            e.find_root(),
            datafusion::error::DataFusionError::ResourcesExhausted(_)
        );
        if busy || crate::is_internal(&e) {
            QueryError::DataFusion(e)
        } else {
            refused(e)
        }
    })?;
    let plan = match deadline {
        Some(d) => crate::deadline::with_deadline(plan, d)?,
        None => plan,
    };
    Ok(Planned {
        plan,
        task,
        is_explain,
    })
}

/// Text of a plan without what a caller must not see: the data files a scan reads
/// (`file_groups={…}`, with names, sizes and byte ranges) become `file_groups=<…>`;
/// `scrub` removes anything else (the data directory).
pub fn redact_plan_text(text: &str, scrub: &dyn Fn(&str) -> String) -> String {
    const KEY: &str = "file_groups={";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(KEY) {
        out.push_str(&rest[..i]);
        out.push_str("file_groups=<…>");
        let after = &rest[i + KEY.len()..];
        let mut depth = 1usize;
        let mut end = after.len();
        for (j, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    scrub(&out)
}

/// The answer of `EXPLAIN` with every plan text redacted ([`redact_plan_text`]).
pub fn redact_explain(
    batches: &[RecordBatch],
    scrub: &dyn Fn(&str) -> String,
) -> Result<Vec<RecordBatch>, QueryError> {
    use datafusion::arrow::array::{Array, ArrayRef, StringArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    batches
        .iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .map(|c| -> Result<ArrayRef, QueryError> {
                    if !matches!(
                        c.data_type(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    ) {
                        return Ok(c.clone());
                    }
                    let s = cast(c, &DataType::Utf8)?;
                    let s = s
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .ok_or_else(|| QueryError::Internal("plan text".into()))?;
                    let red: StringArray = s
                        .iter()
                        .map(|v| v.map(|t| redact_plan_text(t, scrub)))
                        .collect();
                    Ok(cast(&(Arc::new(red) as ArrayRef), c.data_type())?)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(b.schema(), columns)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(sql: &str, limits: &SqlLimits) -> Result<(), QueryError> {
        parse(&SessionContext::new().state(), sql, limits).map(|_| ())
    }

    fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(PLAN_STACK_BYTES)
            .spawn(f)
            .expect("thread")
            .join()
            .expect("join")
    }

    #[test]
    fn each_limit_is_named() {
        on_big_stack(|| {
            let l = SqlLimits::default();
            let chain = |n: usize, op: &str| format!("SELECT {}", vec!["1"; n].join(op));
            assert!(measure(&chain(100, "+"), &l).is_ok());
            let e = measure(&chain(2000, "+"), &l).expect_err("deep");
            assert!(e.to_string().contains("max_depth"), "{e}");
            let e = measure(&chain(3000, " OR "), &l).expect_err("deep");
            assert!(e.to_string().contains("max_depth"), "{e}");
            let list = |n: usize| {
                format!(
                    "SELECT 1 WHERE 1 IN ({})",
                    (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
                )
            };
            assert!(measure(&list(5000), &l).is_ok());
            let e = measure(&list(5001), &l).expect_err("list");
            assert!(e.to_string().contains("max_in_list"), "{e}");
            let unions = |n: usize| vec!["SELECT 1"; n].join(" UNION ALL ");
            assert!(measure(&unions(101), &l).is_ok());
            let e = measure(&unions(3000), &l).expect_err("unions");
            assert!(e.to_string().contains("max_set_operations"), "{e}");
            let wide = format!("SELECT {}", vec!["1"; 1001].join(","));
            let e = measure(&wide, &l).expect_err("wide");
            assert!(e.to_string().contains("max_select_items"), "{e}");
            let long = format!("SELECT '{}'", "x".repeat(300_000));
            let e = measure(&long, &l).expect_err("long");
            assert!(e.to_string().contains("max_sql_bytes"), "{e}");
            let e = measure("SELECT 1; SELECT 2", &l).expect_err("two");
            assert!(matches!(
                e,
                QueryError::Limit(LimitExceeded::NotOneStatement)
            ));
            // set operations hidden in subqueries count too
            let nested = format!("SELECT * FROM ({}) a, ({}) b", unions(60), unions(60));
            let e = measure(&nested, &l).expect_err("nested");
            assert!(e.to_string().contains("max_set_operations"), "{e}");
        });
    }

    #[test]
    fn file_lists_are_redacted() {
        let t = "DataSourceExec: file_groups={2 groups: [[a/x.parquet:0..10], [b/{y}.parquet]]}, projection=[a]";
        let r = redact_plan_text(t, &|s| s.to_string());
        assert_eq!(r, "DataSourceExec: file_groups=<…>, projection=[a]");
    }
}
