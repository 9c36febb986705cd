//! The gradient bucket: every trainable parameter's gradient flattened into one float32 buffer
//! in the model's visiting order, summed over the ranks in one collective, and put back. A
//! parameter a rank has no gradient for (no sequence of its share reached it) contributes
//! zeros; one that no rank has a gradient for stays without one, so AdamW leaves it alone as a
//! single process would.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use spiral_model::CausalLm;

use super::Collectives;

/// Where one parameter sits in the bucket.
struct Slot {
    id: ParamId,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// Sums `grads` over the ranks of `world`, in place.
pub(crate) fn all_reduce_gradients<B: AutodiffBackend>(
    model: &CausalLm<B>,
    grads: &mut GradientsParams,
    world: &dyn Collectives,
) {
    if world.world_size() == 1 {
        return;
    }
    let slots = slots(model);
    let total = slots.last().map_or(0, |s| s.start + s.len);
    // The values, then one presence flag per parameter.
    let mut bucket = vec![0.0f32; total + slots.len()];
    let device = model.device();
    Flatten { grads, slots: &slots, bucket: &mut bucket, at: 0 }.run(model);
    world.sum_f32(&mut bucket);
    for (i, slot) in slots.iter().enumerate() {
        if bucket[total + i] == 0.0 {
            continue;
        }
        let values = bucket[slot.start..slot.start + slot.len].to_vec();
        let data = TensorData::new(values, slot.shape.clone());
        register::<B>(grads, slot, data, &device);
    }
}

/// Every parameter that requires a gradient, in visiting order, with its place in the bucket.
fn slots<B: AutodiffBackend>(model: &CausalLm<B>) -> Vec<Slot> {
    struct Slots(Vec<Slot>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Slots {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let tensor = param.val();
            if !tensor.is_require_grad() {
                return;
            }
            let start = self.0.last().map_or(0, |s: &Slot| s.start + s.len);
            let shape = tensor.dims().to_vec();
            let len = shape.iter().product();
            self.0.push(Slot { id: param.id, shape, start, len });
        }
    }
    let mut slots = Slots(Vec::new());
    Module::<B>::visit(model, &mut slots);
    slots.0
}

/// Moves each slot's gradient (if any) into the bucket and sets its presence flag.
struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    slots: &'a [Slot],
    bucket: &'a mut [f32],
    at: usize,
}

impl Flatten<'_> {
    fn run<B: AutodiffBackend>(mut self, model: &CausalLm<B>) {
        Module::<B>::visit(model, &mut self);
    }
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(slot) = self.slots.get(self.at).filter(|s| s.id == param.id) else { return };
        let index = self.at;
        self.at += 1;
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) else { return };
        let values = grad.into_data().convert::<f32>().into_vec::<f32>().expect("f32 data");
        self.bucket[slot.start..slot.start + slot.len].copy_from_slice(&values);
        let flags = self.bucket.len() - self.slots.len();
        self.bucket[flags + index] = 1.0;
    }
}

/// Registers the summed gradient of `slot`, of whichever rank the parameter has.
fn register<B: AutodiffBackend>(
    grads: &mut GradientsParams,
    slot: &Slot,
    data: TensorData,
    device: &B::Device,
) {
    match slot.shape.len() {
        1 => grads.register(slot.id, Tensor::<B::InnerBackend, 1>::from_data(data, device)),
        2 => grads.register(slot.id, Tensor::<B::InnerBackend, 2>::from_data(data, device)),
        3 => grads.register(slot.id, Tensor::<B::InnerBackend, 3>::from_data(data, device)),
        rank => unreachable!("parameters have 1 to 3 dimensions, not {rank}"),
    }
}
