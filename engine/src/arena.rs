//! Parameters packed into one buffer: a [`ParamArena`] hands out tensors that are views of one
//! storage at aligned offsets, in order, with only alignment padding (zeros) between them. The
//! optimizers detect such a layout ([`packed`]) and then update every parameter with one
//! dispatch (AdamW, the gradient norm, the EMA) instead of one per tensor, as PyTorch's fused
//! and foreach optimizers do.

use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// One zero-filled buffer that parameters are allocated from, front to back.
pub struct ParamArena {
    flat: Tensor,
    used: usize,
}

/// Elements between consecutive offsets kernels can bind (the storage offset alignment).
fn align(device: &Device) -> usize {
    (device.info().limits.min_storage_buffer_offset_alignment as usize / 4).max(1)
}

impl ParamArena {
    /// The elements a tensor of `numel` elements takes in an arena on `device` (rounded up to
    /// the offset alignment); sum it over the parameters for [`ParamArena::new`]'s capacity.
    pub fn slot_len(device: &Device, numel: usize) -> usize {
        numel.max(1).div_ceil(align(device)) * align(device)
    }

    /// An empty arena of `capacity` elements on `device`.
    pub fn new(device: &Device, capacity: usize) -> Result<ParamArena> {
        Ok(ParamArena {
            flat: Tensor::zeros(device, &[capacity.max(1)])?,
            used: 0,
        })
    }

    /// The next tensor of `shape`, holding `data` (a view of the arena; not yet requiring grad).
    pub fn alloc(&mut self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if data.len() != numel {
            return Err(Error::shape(
                "ParamArena::alloc",
                format!("{numel} values for {shape:?}"),
                format!("{} values", data.len()),
            ));
        }
        let dev = self.flat.device().clone();
        let slot = Self::slot_len(&dev, numel);
        let capacity = self.flat.numel();
        if self.used + slot > capacity {
            return Err(Error::invalid(
                "ParamArena::alloc",
                format!(
                    "{} elements used of {capacity}, {slot} more asked: size the arena with \
                     ParamArena::slot_len summed over every parameter",
                    self.used
                ),
            ));
        }
        let view = self
            .flat
            .view_at(self.flat.storage_offset() + self.used, shape);
        view.write(data)?;
        self.used += slot;
        Ok(view)
    }
}

/// Tensors found to be packed: the flat view covering them and each one's offset in it.
pub(crate) struct Packed {
    /// `[len]`: from the first tensor's start to the last one's end, padding included.
    pub flat: Tensor,
    /// Offset of each tensor in `flat`, in elements.
    pub offsets: Vec<usize>,
}

impl Packed {
    /// Whether `other` describes the same layout (the same storage range and offsets).
    pub fn same_layout(&self, other: &Packed) -> bool {
        self.flat.shares_storage(&other.flat)
            && self.flat.storage_offset() == other.flat.storage_offset()
            && self.flat.numel() == other.flat.numel()
            && self.offsets == other.offsets
    }

    /// A tensor of `flat`'s length laid out like this one: the view of each member in it.
    pub fn views_in(&self, flat: &Tensor, members: &[&Tensor]) -> Vec<Tensor> {
        members
            .iter()
            .zip(&self.offsets)
            .map(|(t, &o)| flat.view_at(flat.storage_offset() + o, t.dims()))
            .collect()
    }
}

/// The packed layout of `tensors`, if they are f32 views of one storage in this order with
/// nothing but alignment padding between consecutive ones (as a [`ParamArena`] makes them);
/// `None` otherwise (then the optimizers fall back to one dispatch per tensor).
pub(crate) fn packed(tensors: &[&Tensor]) -> Option<Packed> {
    let first = tensors.first()?;
    let dev = first.device().clone();
    let align = align(&dev);
    let start = first.storage_offset();
    let mut end = start;
    let mut offsets = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let o = t.storage_offset();
        let padding_only = if i == 0 {
            true
        } else {
            o >= end && o - end < align
        };
        if !t.shares_storage(first) || t.dtype() != DType::F32 || !padding_only {
            return None;
        }
        offsets.push(o - start);
        end = o + t.numel();
    }
    Some(Packed {
        flat: first.view_at(start, &[end - start]),
        offsets,
    })
}
