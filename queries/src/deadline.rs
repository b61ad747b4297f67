//! A query's time limit inside its plan.
//!
//! Dropping a query's task at its time limit stops it only at its next `.await`: an
//! operator that loops over an input that is always ready (a cross join feeding a
//! filter and an aggregate, all in memory) never gets there, and the query goes on
//! using the cores long after its caller got 408. So after planning, every input of
//! every operator is wrapped in [`DeadlineExec`], whose stream answers an error once the
//! deadline has passed: the first time any operator asks for more input, the whole
//! plan stops.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    replace_children_if_necessary, ChildrenPropertiesMode, DisplayAs, DisplayFormatType,
    ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
};
use futures::Stream;

/// The message of the error a plan stops with at its deadline.
pub const DEADLINE_PASSED: &str = "truy vấn đã quá thời gian cho phép";

/// `plan` with every operator's input (and its output) behind a [`DeadlineExec`].
pub fn with_deadline(
    plan: Arc<dyn ExecutionPlan>,
    deadline: Instant,
) -> Result<Arc<dyn ExecutionPlan>> {
    let wrap = |p: Arc<dyn ExecutionPlan>| -> Arc<dyn ExecutionPlan> {
        Arc::new(DeadlineExec { input: p, deadline })
    };
    let plan = plan
        .transform_up(|node| {
            let children: Vec<_> = node.children().into_iter().cloned().collect();
            if children.is_empty() {
                return Ok(Transformed::no(node));
            }
            let wrapped = children.into_iter().map(wrap).collect();
            Ok(Transformed::yes(replace_children_if_necessary(
                node, wrapped,
            )?))
        })?
        .data;
    Ok(wrap(plan))
}

/// Passes its input through until the deadline, then fails.
#[derive(Debug)]
pub struct DeadlineExec {
    input: Arc<dyn ExecutionPlan>,
    deadline: Instant,
}

impl DisplayAs for DeadlineExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeadlineExec")
    }
}

impl ExecutionPlan for DeadlineExec {
    fn name(&self) -> &'static str {
        "DeadlineExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return datafusion::common::internal_err!("DeadlineExec has one child");
        }
        Ok(Arc::new(DeadlineExec {
            input: children.swap_remove(0),
            deadline: self.deadline,
        }))
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
        Ok(Box::pin(DeadlineStream {
            inner: self.input.execute(partition, context)?,
            deadline: self.deadline,
        }))
    }
}

struct DeadlineStream {
    inner: SendableRecordBatchStream,
    deadline: Instant,
}

impl Stream for DeadlineStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(Some(Err(DataFusionError::Execution(
                DEADLINE_PASSED.to_string(),
            ))));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for DeadlineStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}
