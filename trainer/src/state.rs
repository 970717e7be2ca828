//! Moving a model's state between the GPU and checkpoints: parameters, EMA weights, AdamW's
//! moments; and building a model from a checkpoint for sampling or evaluation.

use mtdiff_engine::optim::{AdamW, Ema};
use mtdiff_engine::{Device, Tensor};
use mtdiff_model::MtDiffusion;

use crate::checkpoint::{Checkpoint, NamedTensor};
use crate::error::{Error, Result};

/// Every tensor to save, read back from the GPU: `param.*`, `ema.*`, `adam_m.*`, `adam_v.*`.
pub fn collect(model: &MtDiffusion, opt: &AdamW, ema: Option<&Ema>) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    for (i, (name, p)) in model.params().named().iter().enumerate() {
        let shape = p.dims();
        out.push(NamedTensor::new(
            format!("param.{name}"),
            shape,
            p.to_vec()?,
        ));
        if let Some(e) = ema {
            let shadow = e.shadows()[i].to_vec()?;
            out.push(NamedTensor::new(format!("ema.{name}"), shape, shadow));
        }
        if let Some((m, v)) = opt.moments(p) {
            out.push(NamedTensor::new(
                format!("adam_m.{name}"),
                shape,
                m.to_vec()?,
            ));
            out.push(NamedTensor::new(
                format!("adam_v.{name}"),
                shape,
                v.to_vec()?,
            ));
        }
    }
    Ok(out)
}

/// Copies checkpoint tensor `key` into `dst`, checking the shape.
fn put(ckpt: &Checkpoint, key: &str, dst: &Tensor) -> Result<()> {
    let t = ckpt.tensor(key)?;
    if t.shape != dst.dims() {
        return Err(Error::Checkpoint {
            path: ckpt.path.clone(),
            message: format!(
                "{key} has shape {:?}, the model expects {:?} (another model config?)",
                t.shape,
                dst.dims()
            ),
        });
    }
    dst.write(&t.values)?;
    Ok(())
}

/// Loads parameters (the EMA weights when `use_ema` and present) into `model`.
pub fn load_params(model: &MtDiffusion, ckpt: &Checkpoint, use_ema: bool) -> Result<()> {
    for (name, p) in model.params().named() {
        let ema_key = format!("ema.{name}");
        let key = if use_ema && ckpt.tensors.contains_key(&ema_key) {
            ema_key
        } else {
            format!("param.{name}")
        };
        put(ckpt, &key, p)?;
    }
    Ok(())
}

/// Restores parameters, EMA and AdamW exactly (for `--resume`).
pub fn restore_training(
    model: &MtDiffusion,
    opt: &mut AdamW,
    ema: Option<&Ema>,
    ckpt: &Checkpoint,
) -> Result<()> {
    load_params(model, ckpt, false)?;
    for (i, (name, p)) in model.params().named().iter().enumerate() {
        if let Some(e) = ema {
            put(ckpt, &format!("ema.{name}"), &e.shadows()[i])?;
        }
        let mk = format!("adam_m.{name}");
        if ckpt.tensors.contains_key(&mk) {
            let m = Tensor::zeros(p.device(), p.dims())?;
            let v = Tensor::zeros(p.device(), p.dims())?;
            put(ckpt, &mk, &m)?;
            put(ckpt, &format!("adam_v.{name}"), &v)?;
            opt.restore(ckpt.meta.adam_step, p, m, v)?;
        }
    }
    Ok(())
}

/// Builds the checkpoint's model on `dev` and loads its (EMA) weights.
pub fn model_from(dev: &Device, ckpt: &Checkpoint, use_ema: bool) -> Result<MtDiffusion> {
    let model = MtDiffusion::new(dev, &ckpt.meta.model)?;
    load_params(&model, ckpt, use_ema)?;
    Ok(model)
}

/// Runs `f` with the EMA weights swapped into the model, then puts the raw weights back.
pub fn with_ema<R>(
    model: &MtDiffusion,
    ema: Option<&Ema>,
    f: impl FnOnce() -> Result<R>,
) -> Result<R> {
    let Some(ema) = ema else { return f() };
    let params = model.params().tensors();
    let backup = params
        .iter()
        .map(|p| {
            let b = Tensor::zeros(p.device(), p.dims())?;
            b.assign(p)?;
            Ok(b)
        })
        .collect::<Result<Vec<_>>>()?;
    for (p, s) in params.iter().zip(ema.shadows()) {
        p.assign(s)?;
    }
    let r = f();
    for (p, b) in params.iter().zip(&backup) {
        p.assign(b)?;
    }
    r
}
