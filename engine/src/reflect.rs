//! What a WGSL source declares, read with naga: its uniform parameter structs (checked against
//! the Rust [`ParamLayout`]s of the same names) and its storage bindings. Used by the custom
//! kernels at pipeline creation and by `engine/tests/shaders.rs` for every engine kernel.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use crate::device::{Access, Binding};
use crate::params::ParamLayout;

/// A storage binding of group 0 as the WGSL declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageBinding {
    /// `@binding(n)`.
    pub binding: u32,
    /// The variable's name.
    pub name: String,
    /// `read` or `read_write`.
    pub access: Access,
}

/// A parsed and validated WGSL module.
pub struct Reflection {
    /// naga's IR of the module.
    pub module: naga::Module,
    /// What the validator found (which globals each entry point uses).
    pub info: naga::valid::ModuleInfo,
}

/// Parses and validates `source` (a complete module: prelude included), or the error as text.
pub fn parse(source: &str) -> Result<Reflection, String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(source))?;
    Ok(Reflection { module, info })
}

impl Reflection {
    /// Whether the compute entry point `entry` exists.
    pub fn has_compute_entry(&self, entry: &str) -> bool {
        self.entry_index(entry).is_some()
    }

    fn entry_index(&self, entry: &str) -> Option<usize> {
        self.module
            .entry_points
            .iter()
            .position(|e| e.name == entry && e.stage == naga::ShaderStage::Compute)
    }

    /// Whether entry point `entry` uses the global `var` (every global when `entry` is `None`).
    fn uses(&self, entry: Option<usize>, var: naga::Handle<naga::GlobalVariable>) -> bool {
        entry.is_none_or(|i| !self.info.get_entry_point(i)[var].is_empty())
    }

    /// Checks the uniform globals (those `entry` uses, or all) against the layout in `layouts`
    /// named like each one's struct type: size, member names and offsets. How many it checked.
    pub fn check_params(
        &self,
        entry: Option<&str>,
        layouts: &[ParamLayout],
    ) -> Result<usize, String> {
        let index = entry.and_then(|e| self.entry_index(e));
        check_params_where(&self.module, layouts, |h| self.uses(index, h))
    }

    /// The storage bindings of group 0 that `entry` uses, by binding number.
    pub fn storage_bindings(&self, entry: &str) -> Vec<StorageBinding> {
        let index = self.entry_index(entry);
        storage_bindings_where(&self.module, |h| self.uses(index, h))
    }
}

/// The storage bindings each compute entry point of a module uses, by entry name.
type EntryBindings = HashMap<String, Vec<StorageBinding>>;

/// The storage bindings compute entry point `entry` of `source` (a complete module) uses. Each
/// source is parsed once per process: pipelines of the same kernel on several devices, and the
/// entry points of one module, share the result.
pub fn entry_storage_bindings(source: &str, entry: &str) -> Result<Vec<StorageBinding>, String> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Arc<EntryBindings>>>> = OnceLock::new();
    let mut h = DefaultHasher::new();
    source.hash(&mut h);
    let key = h.finish();
    let cache = CACHE.get_or_init(Default::default);
    let cached = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let entries = match cached {
        Some(e) => e,
        None => {
            let r = parse(source)?;
            let e: EntryBindings = r
                .module
                .entry_points
                .iter()
                .filter(|e| e.stage == naga::ShaderStage::Compute)
                .map(|e| (e.name.clone(), r.storage_bindings(&e.name)))
                .collect();
            let e = Arc::new(e);
            cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, e.clone());
            e
        }
    };
    entries
        .get(entry)
        .cloned()
        .ok_or_else(|| format!("the WGSL has no compute entry point `{entry}`"))
}

/// The `@binding` number of each of `declared` in the storage bindings that entry point `entry`
/// of `source` (a complete module) uses, matched by name; an error naming both sides when they
/// differ. What the pipeline cache checks on every pipeline it builds.
pub fn binding_slots(source: &str, entry: &str, declared: &[Binding]) -> Result<Vec<u32>, String> {
    resolve_slots(entry, declared, &entry_storage_bindings(source, entry)?)
}

/// The `@binding` number of each declared binding, matched by name against the storage
/// bindings `entry` uses in the WGSL; an error naming both sides when they differ (a name
/// missing on either side, or another access).
fn resolve_slots(
    entry: &str,
    declared: &[Binding],
    wgsl: &[StorageBinding],
) -> std::result::Result<Vec<u32>, String> {
    let show_wgsl = || -> String {
        wgsl.iter()
            .map(|b| format!("@binding({}) {} {:?}", b.binding, b.name, b.access))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let show_declared = || -> String {
        declared
            .iter()
            .map(|b| format!("{} {:?}", b.name, b.access))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let differ = |why: String| {
        Err(format!(
            "{why}: entry point `{entry}` uses the storage bindings [{}], the kernel declares [{}]",
            show_wgsl(),
            show_declared()
        ))
    };
    let mut slots = Vec::with_capacity(declared.len());
    for (i, d) in declared.iter().enumerate() {
        if declared[..i].iter().any(|e| e.name == d.name) {
            return differ(format!("`{}` is declared twice", d.name));
        }
        match wgsl.iter().find(|b| b.name == d.name) {
            Some(b) if b.access == d.access => slots.push(b.binding),
            Some(b) => {
                return differ(format!(
                    "`{}` is {:?} in the WGSL but declared {:?}",
                    d.name, b.access, d.access
                ))
            }
            None => return differ(format!("`{}` is not used by the entry point", d.name)),
        }
    }
    if let Some(b) = wgsl
        .iter()
        .find(|b| !declared.iter().any(|d| d.name == b.name))
    {
        return differ(format!("`{}` is used but not declared", b.name));
    }
    Ok(slots)
}

/// Checks every uniform global of `module` against the layout in `layouts` named like its struct
/// type: size, member names and offsets. Returns how many it checked.
pub fn check_params(module: &naga::Module, layouts: &[ParamLayout]) -> Result<usize, String> {
    check_params_where(module, layouts, |_| true)
}

fn check_params_where(
    module: &naga::Module,
    layouts: &[ParamLayout],
    keep: impl Fn(naga::Handle<naga::GlobalVariable>) -> bool,
) -> Result<usize, String> {
    let mut checked = 0;
    for (handle, var) in module.global_variables.iter() {
        if var.space != naga::AddressSpace::Uniform || !keep(handle) {
            continue;
        }
        let var_name = var.name.as_deref().unwrap_or("?");
        let ty = &module.types[var.ty];
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            return Err(format!(
                "uniform `{var_name}` is not a struct; parameters are one struct mirroring a \
                 kernel_params! struct"
            ));
        };
        let struct_name = ty.name.as_deref().unwrap_or("?");
        let Some(rust) = layouts.iter().find(|l| l.name == struct_name) else {
            let known: Vec<&str> = layouts.iter().map(|l| l.name).collect();
            return Err(format!(
                "uniform `{var_name}` has type {struct_name}, but the Rust parameter struct is \
                 {known:?}; name the WGSL struct like the Rust one"
            ));
        };
        let wgsl: Vec<(String, usize)> = members
            .iter()
            .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
            .collect();
        let ours: Vec<(String, usize)> = rust
            .fields
            .iter()
            .map(|f| (f.name.to_string(), f.offset))
            .collect();
        if wgsl != ours {
            return Err(format!(
                "{struct_name}'s members (name, byte offset) differ: WGSL {wgsl:?}, Rust {ours:?}"
            ));
        }
        if *span as usize != rust.size {
            return Err(format!(
                "{struct_name} is {span} bytes in WGSL but {} in Rust",
                rust.size
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

fn storage_bindings_where(
    module: &naga::Module,
    keep: impl Fn(naga::Handle<naga::GlobalVariable>) -> bool,
) -> Vec<StorageBinding> {
    let mut out: Vec<StorageBinding> = module
        .global_variables
        .iter()
        .filter(|(h, _)| keep(*h))
        .filter_map(|(_, var)| {
            let naga::AddressSpace::Storage { access } = var.space else {
                return None;
            };
            let rb = var.binding.as_ref().filter(|b| b.group == 0)?;
            Some(StorageBinding {
                binding: rb.binding,
                name: var.name.clone().unwrap_or_default(),
                access: if access.contains(naga::StorageAccess::STORE) {
                    Access::ReadWrite
                } else {
                    Access::Read
                },
            })
        })
        .collect();
    out.sort_by_key(|b| b.binding);
    out
}
