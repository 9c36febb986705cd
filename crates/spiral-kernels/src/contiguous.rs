//! Row-major copies of strided burn-flex tensors whose last dimension is contiguous, such as the
//! `[batch, heads, time, head_dim]` view of a `[batch, time, heads, head_dim]` projection that
//! attention works in.
//!
//! burn-flex 0.21 copies a layout that does not collapse to two dimensions with its general
//! fallback, one element at a time through `StridedIter`; those copies of transposed attention
//! views (KV-cache writes at prefill, the fused kernels' strided inputs) were 7% of an RL step
//! (measured with `perf`). Here each run along the last dimension is one `copy_from_slice`.
//! Weights transposed at load time are materialised once, on every backend ([`materialized`]).

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Element, Tensor, TensorData, backend::Backend, bf16, f16};

use crate::dispatch::{from_flex, to_flex};

/// `x` in row-major order on burn-flex (see [`contiguous`]), so that a reshape after it is free;
/// `x` unchanged on every other backend, whose own reshape copies as fast as it can.
pub fn row_major<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match to_flex(x) {
        Ok(x) => from_flex(contiguous(&x)),
        Err(x) => x,
    }
}

/// `t` materialised in its own layout on every backend, for weights transposed once at load
/// time: the CPU GEMM is up to 2x faster on contiguous right-hand sides than on transposed views
/// (measured on the rollout-cpu shapes).
pub fn materialized<B: Backend>(t: Tensor<B, 2>) -> Tensor<B, 2> {
    let device = t.device();
    Tensor::from_data(t.into_data(), &device)
}

/// `t` in row-major order: `t` itself (shared, not copied) when it already is, a run-by-run copy
/// when its last dimension is contiguous and its other strides are positive, burn-flex's own copy
/// otherwise.
pub fn contiguous(t: &FlexTensor) -> FlexTensor {
    let layout = t.layout();
    let strides = layout.strides();
    let runs = strides.len() >= 2 && strides.last() == Some(&1) && strides.iter().all(|&s| s >= 0);
    if layout.is_contiguous() || !runs {
        return t.to_contiguous();
    }
    match t.dtype() {
        DType::F32 => copy_runs::<f32>(t),
        DType::BF16 => copy_runs::<bf16>(t),
        DType::F16 => copy_runs::<f16>(t),
        DType::F64 => copy_runs::<f64>(t),
        _ => t.to_contiguous(),
    }
}

/// Copies every run along the last dimension of `t` in row-major order.
fn copy_runs<E: Element + bytemuck::Pod>(t: &FlexTensor) -> FlexTensor {
    let layout = t.layout();
    let shape: Vec<usize> = layout.shape().iter().copied().collect();
    let strides: Vec<usize> = layout.strides().iter().map(|&s| s as usize).collect();
    let (outer, run) = shape.split_at(shape.len() - 1);
    let run = run[0];
    let source = t.storage::<E>();
    let mut out = Vec::with_capacity(shape.iter().product());
    // `index` counts through the outer dimensions like an odometer; `at` follows it in storage.
    let mut index = vec![0usize; outer.len()];
    let mut at = layout.start_offset();
    if run > 0 && outer.iter().all(|&n| n > 0) {
        loop {
            out.extend_from_slice(&source[at..at + run]);
            let mut dim = outer.len();
            loop {
                if dim == 0 {
                    return FlexTensor::from_data(TensorData::new(out, shape));
                }
                dim -= 1;
                index[dim] += 1;
                at += strides[dim];
                if index[dim] < outer[dim] {
                    break;
                }
                at -= strides[dim] * outer[dim];
                index[dim] = 0;
            }
        }
    }
    FlexTensor::from_data(TensorData::new(out, shape))
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tensor, TensorPrimitive};

    use super::*;

    fn flex<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
        t.into_primitive().tensor()
    }

    #[test]
    fn strided_views_copy_to_burns_row_major_order() {
        let x = Tensor::<Flex, 4>::random([2, 5, 3, 4], Distribution::Default, &Default::default());
        let views = [
            x.clone().swap_dims(1, 2),
            x.clone().swap_dims(0, 2),
            x.clone().slice([0..2, 1..4, 0..3, 0..4]).swap_dims(1, 2),
            x.clone().swap_dims(2, 3),
            x.clone(),
        ];
        for view in views {
            let expected: Vec<f32> = view.to_data().to_vec().unwrap();
            let copied = contiguous(&flex(view.clone()));
            assert!(copied.layout().is_contiguous());
            assert_eq!(copied.layout().shape(), &view.shape());
            let copied = Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(copied));
            assert_eq!(copied.to_data().to_vec::<f32>().unwrap(), expected);
        }
        let empty = Tensor::<Flex, 3>::zeros([2, 0, 3], &Default::default()).swap_dims(0, 1);
        assert_eq!(contiguous(&flex(empty)).layout().num_elements(), 0);
    }
}
