//! Run-time specialisation on the backend: the model is generic over burn's `Backend`, and a few
//! hot spots (the fused CPU kernels of [`crate::softmax`], [`crate::swiglu`] and [`crate::rope`],
//! the KV cache) take a faster path written directly against burn-flex's tensors when the backend
//! turns out to be burn-flex. `Any` makes the check and the conversion safe; the path taken is
//! decided by the type alone, never by the data. The CUDA analytic backward passes are chosen the
//! same way ([`to_cuda_analytic`]).

use std::any::Any;

use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData, TensorPrimitive, backend::Backend};

use crate::contiguous::contiguous;

/// The CPU training backend the fused kernels differentiate (the CPU one of [`crate::device`]).
pub type FlexAutodiff = Autodiff<Flex>;

/// `t` as a tensor of backend `T`, if `B` is `T`; `t` itself otherwise.
pub fn downcast<B: Backend, T: Backend, const D: usize>(
    t: Tensor<B, D>,
) -> Result<Tensor<T, D>, Tensor<B, D>> {
    if !is::<B, T>() {
        // The common answer on every other backend, without boxing the tensor to learn it.
        return Err(t);
    }
    let boxed: Box<dyn Any> = Box::new(t);
    boxed.downcast::<Tensor<T, D>>().map(|t| *t).map_err(|boxed| {
        *boxed.downcast::<Tensor<B, D>>().expect("a box holds the type it was made from")
    })
}

/// [`downcast`] of three tensors of one backend (an attention call's queries, keys and values):
/// all three as tensors of `T` if `B` is `T`, all three back otherwise.
#[allow(clippy::type_complexity)]
pub fn downcast_three<B: Backend, T: Backend, const D: usize>(
    (a, b, c): (Tensor<B, D>, Tensor<B, D>, Tensor<B, D>),
) -> Result<(Tensor<T, D>, Tensor<T, D>, Tensor<T, D>), (Tensor<B, D>, Tensor<B, D>, Tensor<B, D>)>
{
    match (downcast::<B, T, D>(a), downcast(b), downcast(c)) {
        (Ok(a), Ok(b), Ok(c)) => Ok((a, b, c)),
        (Err(a), Err(b), Err(c)) => Err((a, b, c)),
        _ => unreachable!("the three tensors have the backend B"),
    }
}

/// The inverse of [`downcast`], for a backend `T` already known to be `B`.
pub fn upcast<T: Backend, B: Backend, const D: usize>(t: Tensor<T, D>) -> Tensor<B, D> {
    downcast::<T, B, D>(t).unwrap_or_else(|_| unreachable!("called only when T is B"))
}

/// burn-flex's own tensor behind `t`, if `B` is burn-flex; `t` itself otherwise.
pub fn to_flex<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<FlexTensor, Tensor<B, D>> {
    downcast::<B, Flex, D>(t).map(|t| t.into_primitive().tensor())
}

/// The inverse of [`to_flex`], for a backend `B` already known to be burn-flex.
pub fn from_flex<B: Backend, const D: usize>(t: FlexTensor) -> Tensor<B, D> {
    upcast(Tensor::<Flex, D>::from_primitive(TensorPrimitive::Float(t)))
}

/// `t` as a tensor of `Autodiff<Cuda>` if `B` is that backend and its analytic backward passes
/// are on ([`cuda_analytic_backward`]); `t` itself otherwise.
#[cfg(feature = "cuda")]
pub fn to_cuda_analytic<B: Backend, const D: usize>(
    t: Tensor<B, D>,
) -> Result<Tensor<burn::backend::Autodiff<crate::device::Cuda>, D>, Tensor<B, D>> {
    if !cuda_analytic_backward() {
        return Err(t);
    }
    downcast(t)
}

/// Whether the analytic backward passes of [`crate::attention_probs`], [`crate::rms_norm`],
/// [`crate::swiglu`] and [`crate::logit_scores`] are taken on `Autodiff<Cuda>`: yes, unless the
/// environment sets `SPIRAL_CUDA_BACKWARD=composed`, which keeps autodiff's own, to measure the
/// difference or to rule them out.
#[cfg(feature = "cuda")]
fn cuda_analytic_backward() -> bool {
    static ANALYTIC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANALYTIC.get_or_init(|| match std::env::var("SPIRAL_CUDA_BACKWARD").as_deref() {
        Err(_) | Ok("analytic") => true,
        Ok("composed") => false,
        Ok(other) => {
            eprintln!(
                "warning: SPIRAL_CUDA_BACKWARD={other:?} is neither \"analytic\" nor \"composed\"; \
                 taking the analytic backward passes"
            );
            true
        }
    })
}

/// The float32 elements of `t` in row-major order (copied only if `t` is a strided view).
pub fn values(t: &FlexTensor) -> FlexTensor {
    contiguous(t)
}

/// A contiguous float32 tensor of `t`'s shape holding `data`.
pub fn like(t: &FlexTensor, data: Vec<f32>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, t.layout().shape().clone()))
}

/// Whether `B` is `T`.
pub fn is<B: Backend, T: Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<T>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_recognises_exactly_the_backend_asked_for() {
        let x = Tensor::<Flex, 3>::zeros([1, 1, 2], &Default::default());
        assert!(downcast::<Flex, Flex, 3>(x.clone()).is_ok());
        assert!(downcast::<Flex, Autodiff<Flex>, 3>(x.clone()).is_err());
        let x = Tensor::<Autodiff<Flex>, 3>::from_inner(x);
        assert!(downcast::<Autodiff<Flex>, Autodiff<Flex>, 3>(x.clone()).is_ok());
        assert!(downcast::<Autodiff<Flex>, Flex, 3>(x).is_err());
        assert!(is::<Flex, Flex>() && !is::<Autodiff<Flex>, Flex>());
    }
}
