//! Territorial scope as a table provider that a user's query cannot reach into.
//!
//! A scoped table is a logical plan of ours (the table filtered to the territory, or
//! joined to the dossiers in it). It is *not* a view: a view's plan is inlined into the
//! user's query, and then the optimizer may push a user's predicate below the scope
//! filter or evaluate both in one expression, so a failing user expression (a cast, a
//! regular expression, …) could see a row outside the territory and quote it in its
//! error. Here the planner sees only a leaf; its scan plans our own plan and wraps it
//! in [`ScopeBarrierExec`], a node through which no filter, projection or limit of the
//! user is pushed. So every expression of the user is evaluated above the barrier, on
//! rows already in scope.
//!
//! For speed, simple comparisons of a column with literals of its own type (which can
//! neither fail nor quote a value) are accepted as inexact filters and placed on our
//! plan, where they prune files; the user's filter still runs above the barrier.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, TableProviderFilterPushDown,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};

/// A table that is a fixed plan of ours, seen by the user's query as a leaf.
#[derive(Debug)]
pub struct ScopedTable {
    name: String,
    plan: LogicalPlan,
    schema: SchemaRef,
}

impl ScopedTable {
    /// `plan` must already hold the territorial restriction.
    pub fn new(name: &str, plan: LogicalPlan) -> ScopedTable {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        ScopedTable {
            name: name.to_string(),
            plan,
            schema,
        }
    }
}

/// Whether a filter can be evaluated on any row without failing or depending on more
/// than a column's own value compared with a literal of the same type: such a filter
/// may run below the scope (it only prunes).
fn harmless(e: &Expr) -> bool {
    fn column(e: &Expr) -> bool {
        matches!(e, Expr::Column(_))
    }
    fn literal(e: &Expr) -> bool {
        matches!(e, Expr::Literal(..))
    }
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => harmless(left) && harmless(right),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => {
                (column(left) && literal(right)) || (literal(left) && column(right))
            }
            _ => false,
        },
        Expr::Not(x) => harmless(x),
        Expr::IsNull(x) | Expr::IsNotNull(x) => column(x),
        Expr::InList(l) => column(&l.expr) && l.list.iter().all(literal),
        Expr::Between(b) => column(&b.expr) && literal(&b.low) && literal(&b.high),
        _ => false,
    }
}

#[async_trait::async_trait]
impl TableProvider for ScopedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        // a table to catalogs (information_schema, pg_catalog: `\dt` lists tables)
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if harmless(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut plan = LogicalPlanBuilder::from(self.plan.clone());
        // only harmless filters are ever handed to us; check again all the same
        if let Some(f) = filters
            .iter()
            .filter(|f| harmless(f))
            .cloned()
            .reduce(Expr::and)
        {
            plan = plan.filter(f)?;
        }
        if let Some(p) = projection {
            if p.iter().copied().ne(0..self.schema.fields().len()) {
                plan = plan.select(p.iter().copied())?;
            }
        }
        if let Some(l) = limit {
            plan = plan.limit(0, Some(l))?;
        }
        let inner = state.create_physical_plan(&plan.build()?).await?;
        Ok(Arc::new(ScopeBarrierExec {
            table: self.name.clone(),
            input: inner,
        }))
    }
}

/// A view of ours that catalogs list as a table (`information_schema`, `pg_catalog`
/// and so psql's `\dt`); planned exactly as the view it wraps.
#[derive(Debug)]
pub struct AsTable(pub Arc<dyn TableProvider>);

#[async_trait::async_trait]
impl TableProvider for AsTable {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
}

/// Runs our plan of a scoped table and passes its batches on unchanged. To the query
/// above it is a leaf: the physical optimizer of the user's query neither sees nor
/// rewrites our plan (it was optimized on its own when the table was scanned), and no
/// filter, projection or limit of the user's query can be pushed into it, so nothing of
/// the query above is evaluated on rows below the scope.
#[derive(Debug)]
pub struct ScopeBarrierExec {
    table: String,
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for ScopeBarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ScopeBarrierExec: table={}", self.table)
    }
}

impl ExecutionPlan for ScopeBarrierExec {
    fn name(&self) -> &'static str {
        "ScopeBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return datafusion::common::internal_err!("ScopeBarrierExec is a leaf");
        }
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn only_plain_comparisons_are_harmless() {
        assert!(harmless(&col("commune_code").eq(lit("11311"))));
        assert!(harmless(
            &col("a")
                .gt(lit(1))
                .and(col("b").in_list(vec![lit("x")], false))
        ));
        assert!(harmless(&col("a").is_null().or(col("b").lt_eq(lit(2)))));
        // a cast, a function, an arithmetic expression: not harmless
        assert!(!harmless(
            &datafusion::logical_expr::cast(
                col("a"),
                datafusion::arrow::datatypes::DataType::Int32
            )
            .eq(lit(0))
        ));
        assert!(!harmless(&(col("a") + lit(1)).eq(lit(2))));
        assert!(!harmless(&col("a").eq(col("b"))));
        assert!(!harmless(&col("a").like(lit("%x"))));
    }
}
