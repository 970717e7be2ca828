//! Reverse-mode autodiff: ops attach a [`Node`] (their inputs and a backward rule) to outputs
//! that need gradients; [`Tensor::backward`] walks the graph in reverse topological order.
//! Backward rules are written with engine ops, so the backward pass runs on the GPU.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::Result;
use crate::tensor::{Tensor, TensorId};

/// A backward rule: given the output's gradient and which inputs need one, the inputs' gradients.
pub(crate) type BackwardFn =
    Box<dyn Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// How a tensor was made: the op, its inputs and its backward rule.
pub(crate) struct Node {
    pub op: &'static str,
    pub inputs: Vec<NodeInput>,
    pub backward: BackwardFn,
}

/// What a node keeps of one input: its identity and how it was made, not its data. An
/// intermediate's buffer lives only as long as a backward rule (or the caller) holds it, so a
/// value no backward rule needs is freed as soon as the forward pass has used it.
pub(crate) struct NodeInput {
    pub id: TensorId,
    pub requires_grad: bool,
    pub dims: Vec<usize>,
    pub node: Option<Arc<Node>>,
}

impl NodeInput {
    /// The graph's view of `t`.
    pub(crate) fn of(t: &Tensor) -> NodeInput {
        NodeInput {
            id: t.id(),
            requires_grad: t.requires_grad(),
            dims: t.dims().to_vec(),
            node: t.node().cloned(),
        }
    }
}

thread_local! {
    static NO_GRAD_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Whether ops on this thread record backward rules now.
pub fn grad_enabled() -> bool {
    NO_GRAD_DEPTH.with(|d| d.get() == 0)
}

/// While alive, ops on this thread record nothing (for sampling and optimizer updates).
pub struct NoGradGuard(());

impl NoGradGuard {
    /// Turns recording off until the guard is dropped.
    pub fn new() -> NoGradGuard {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() + 1));
        NoGradGuard(())
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` with gradient recording off.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = NoGradGuard::new();
    f()
}

/// Gradients of the leaves that require grad, keyed by tensor identity.
#[derive(Default)]
pub struct Gradients(HashMap<TensorId, Tensor>);

impl Gradients {
    /// The gradient of `t`, if `t` is a leaf reached by the backward pass.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.0.get(&t.id())
    }
    /// Removes and returns the gradient of `t`.
    pub fn take(&mut self, t: &Tensor) -> Option<Tensor> {
        self.0.remove(&t.id())
    }
    /// Number of leaves with a gradient.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether no leaf got a gradient.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Nodes reachable from `root` through inputs that require grad, inputs before users.
fn topological_order(root: &NodeInput) -> Vec<&NodeInput> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order DFS: (input, children pushed?)
    let mut stack = vec![(root, false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id) {
            continue;
        }
        stack.push((t, true));
        if let Some(node) = &t.node {
            for i in node
                .inputs
                .iter()
                .filter(|i| i.requires_grad && !seen.contains(&i.id))
            {
                stack.push((i, false));
            }
        }
    }
    order
}

impl Tensor {
    /// Backpropagates from this tensor (seeded with ones) and returns the leaves' gradients,
    /// summed where a tensor is used more than once.
    pub fn backward(&self) -> Result<Gradients> {
        let _ng = NoGradGuard::new();
        let _full_precision = crate::ops::precision::Autocast::off();
        let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
        let mut leaves = Gradients::default();
        if !self.requires_grad() {
            return Ok(leaves);
        }
        grads.insert(
            self.id(),
            crate::ops::full(self.device(), self.dims(), 1.0)?,
        );
        let root = NodeInput::of(self);
        for t in topological_order(&root).into_iter().rev() {
            let Some(g) = grads.remove(&t.id) else {
                continue;
            };
            let Some(node) = &t.node else {
                leaves.0.insert(t.id, g);
                continue;
            };
            let needs: Vec<bool> = node.inputs.iter().map(|i| i.requires_grad).collect();
            let input_grads = (node.backward)(&g, &needs)?;
            for ((input, gi), need) in node.inputs.iter().zip(input_grads).zip(needs) {
                let Some(gi) = gi.filter(|_| need) else {
                    continue;
                };
                debug_assert_eq!(
                    gi.dims(),
                    &input.dims[..],
                    "gradient shape of {} input",
                    node.op
                );
                let acc = match grads.remove(&input.id) {
                    Some(prev) => prev.add(&gi)?,
                    None => gi,
                };
                grads.insert(input.id, acc);
            }
        }
        Ok(leaves)
    }
}
