//! Typed kernel parameters: each kernel family's uniform block is a `#[repr(C)]` Rust struct
//! mirrored by a WGSL `struct` of the same name, member names and offsets.
//!
//! [`kernel_params!`](crate::kernel_params) declares such a struct and records its layout, and
//! `engine/tests/shaders.rs` checks every shader's uniform struct against that record with
//! naga's layouter, so a member added on one side only, renamed or moved fails a test instead of
//! reading the wrong word.

/// One member of a parameter struct: its name and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamField {
    /// The member's name, the same in Rust and WGSL.
    pub name: &'static str,
    /// Its byte offset in the struct.
    pub offset: usize,
}

/// A parameter struct's WGSL name, size and members, as the Rust side lays them out.
#[derive(Clone, Copy, Debug)]
pub struct ParamLayout {
    /// The WGSL struct's name (the Rust struct's name).
    pub name: &'static str,
    /// `size_of` the Rust struct.
    pub size: usize,
    /// Its members in declaration order.
    pub fields: &'static [ParamField],
}

/// A kernel's uniform parameters: plain data bound at `@group(0) @binding(0)` as a WGSL struct
/// with the same [`ParamLayout`]. Declare one with [`kernel_params!`](crate::kernel_params).
pub trait KernelParams: bytemuck::Pod {
    /// The struct's layout, checked against the WGSL struct of the same name.
    const LAYOUT: ParamLayout;
}

/// The most bytes a kernel's parameter struct may take (one uniform slot per dispatch).
pub const MAX_PARAM_BYTES: usize = 256;

/// Declares `#[repr(C)]` parameter structs for WGSL kernels: plain-data derives, a
/// [`KernelParams`] impl recording each member's name and offset, and a compile-time check that
/// the struct fits one uniform slot. Members are `u32`, `i32`, `f32` or arrays of
/// `[u32; 4]`/`[f32; 4]` (WGSL `vec4`); pad by hand where WGSL aligns a `vec4` to 16 bytes
/// (`engine/tests/shaders.rs` fails if an offset differs).
///
/// ```
/// mtdiff_engine::kernel_params! {
///     /// Parameters of a scale kernel.
///     pub struct ScaleParams {
///         /// Elements.
///         n: u32,
///         /// What they are multiplied by.
///         factor: f32,
///     }
/// }
/// use mtdiff_engine::params::KernelParams;
/// assert_eq!(ScaleParams::LAYOUT.fields[1].offset, 4);
/// ```
#[macro_export]
macro_rules! kernel_params {
    ($(
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        $vis struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }
        // SAFETY: `#[repr(C)]`, every member is plain data (`u32`/`i32`/`f32` or arrays of them),
        // and the assertion below rules out implicit padding.
        unsafe impl $crate::params::bytemuck::Zeroable for $name {}
        // SAFETY: as above.
        unsafe impl $crate::params::bytemuck::Pod for $name {}
        const _: () = {
            let members = 0 $(+ ::std::mem::size_of::<$ty>())*;
            assert!(
                members == ::std::mem::size_of::<$name>(),
                "kernel parameter struct has implicit padding"
            );
            assert!(
                ::std::mem::size_of::<$name>() <= $crate::params::MAX_PARAM_BYTES,
                "kernel parameter struct exceeds one uniform slot"
            );
        };
        impl $crate::params::KernelParams for $name {
            const LAYOUT: $crate::params::ParamLayout = $crate::params::ParamLayout {
                name: stringify!($name),
                size: ::std::mem::size_of::<$name>(),
                fields: &[$($crate::params::ParamField {
                    name: stringify!($field),
                    offset: ::std::mem::offset_of!($name, $field),
                }),*],
            };
        }
    )*};
}

#[doc(hidden)]
pub use bytemuck;
