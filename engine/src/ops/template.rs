//! The one templating mechanism of the generated kernels: a WGSL template in `shaders/` with
//! `{{NAME}}` slots (upper-case letters, digits and `_`), each filled by its op module's emitter.
//! `mtdiff kernels --dump DIR` writes every filled variant; the snapshot test keeps them in review.

/// `template` with every `{{NAME}}` slot replaced by its value in `slots`.
///
/// Panics when a slot of the template has no value or a value has no slot: either is a bug in an
/// emitter, and the validation and snapshot tests fill every variant.
pub fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut used = vec![false; slots.len()];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with("}}") {
            // Not a slot (e.g. `{{` in a comment): copied as it is.
            out.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        let Some(i) = slots.iter().position(|(n, _)| *n == name) else {
            panic!("template slot {{{{{name}}}}} has no value");
        };
        used[i] = true;
        out.push_str(&rest[..start]);
        out.push_str(slots[i].1);
        rest = &after[name_len + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        panic!("no template slot {{{{{}}}}} for its value", slots[i].0);
    }
    out
}

/// The WGSL expression `vec4<f32>(e(0), e(1), e(2), e(3))`, for emitters that gather four lanes.
pub(crate) fn vec4_of(e: impl Fn(usize) -> String) -> String {
    format!("vec4<f32>({}, {}, {}, {})", e(0), e(1), e(2), e(3))
}

/// `source` with the storage bindings `names` read as f16: each `var<storage, read> NAME:
/// array<f32>` (or `array<vec4<f32>>`) becomes an array of packed f16 words (`array<u32>`, two
/// elements a word as [`crate::DType::F16`] stores them; `array<vec2<u32>>` for vec4s) and every
/// `NAME[i]` a call `load_NAME(i)` that unpacks element i to f32 (or vec4<f32>); emitters may
/// also call `load_NAME_pair(w)`, elements 2w and 2w + 1 as a vec2<f32> (scalar arrays). The kernel
/// still computes in f32: this is how every kernel with f16 inputs is made from its f32 source.
/// `unpack2x16float` is core WGSL, so no SHADER_F16 feature is needed.
///
/// Panics when a name has no such declaration, or the kernel takes its length: either is a bug
/// in the caller, and the validation and snapshot tests build every f16 variant.
pub fn with_f16_inputs(source: &str, names: &[&str]) -> String {
    let mut out = source.to_string();
    for name in names {
        assert!(
            !out.contains(&format!("arrayLength(&{name})")),
            "{name}: the length of an f16 input counts words, not elements"
        );
        out = loads_through(&out, name);
        let decl = format!("var<storage, read> {name}: array<");
        let start = out
            .find(&decl)
            .unwrap_or_else(|| panic!("no `{decl}…>` declaration to read as f16"))
            + decl.len();
        let (words, loader) = if out[start..].starts_with("f32>;") {
            (
                "u32>;",
                format!(
                    "fn load_{name}(i: u32) -> f32 {{ return unpack2x16float({name}[i >> 1u])[i & 1u]; }}\n\
                     fn load_{name}_pair(w: u32) -> vec2<f32> {{ return unpack2x16float({name}[w]); }}"
                ),
            )
        } else if out[start..].starts_with("vec4<f32>>;") {
            (
                "vec2<u32>>;",
                format!(
                    "fn load_{name}(i: u32) -> vec4<f32> {{ let h = {name}[i]; \
                     return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y)); }}"
                ),
            )
        } else {
            panic!("{name} is not an array of f32 or vec4<f32>");
        };
        let elem_end = out[start..].find(';').expect("a declaration ends") + start + 1;
        let line_end = out[elem_end..]
            .find('\n')
            .map_or(out.len(), |i| i + elem_end);
        out.insert_str(
            line_end,
            &format!("\n// {name} holds f16 pairs (with_f16_inputs).\n{loader}"),
        );
        out.replace_range(start..elem_end, words);
    }
    out
}

/// `source` with the vec4 storage outputs `names` written as f16: each `var<storage,
/// read_write> NAME: array<vec4<f32>>` becomes `array<vec2<u32>>` (four f16 values, stored as
/// [`crate::DType::F16`] stores them) and every store `NAME[i] = v;` writes `f16x4(v)` (the
/// prelude's rounding, the same as `Tensor::to_f16`'s). The kernel computes in f32 as before.
///
/// Panics when a name has no such declaration, or the kernel does anything with it but store
/// whole vec4s: a bug in the caller, caught by the validation tests.
pub fn with_f16_outputs(source: &str, names: &[&str]) -> String {
    let mut out = source.to_string();
    for name in names {
        let decl = format!("var<storage, read_write> {name}: array<vec4<f32>>;");
        assert!(
            out.contains(&decl),
            "no `{decl}` declaration to write as f16"
        );
        out = stores_through(&out, name);
        out = out.replace(
            &decl,
            &format!(
                "var<storage, read_write> {name}: array<vec2<u32>>; // f16 (with_f16_outputs)"
            ),
        );
    }
    out
}

/// `source` with every `name[i] = v;` rewritten as `name[i] = f16x4(v);`.
fn stores_through(source: &str, name: &str) -> String {
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some((_, close)) = next_indexing(rest, name) {
        // The index, then ` = value;`.
        let after = rest[close + 1..].trim_start();
        assert!(
            after.starts_with('=') && !after.starts_with("=="),
            "{name} is read, not only stored: it cannot be written as f16"
        );
        let value_start = rest.len() - after.len() + 1;
        let end = rest[value_start..]
            .find(';')
            .map(|i| value_start + i)
            .unwrap_or_else(|| panic!("a store to {name} does not end"));
        out.push_str(&rest[..value_start]);
        out.push_str(&format!(" f16x4({})", rest[value_start..end].trim()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The first `name[…]` of `source` with `name` a whole identifier: the positions of `name` and
/// of the `]` that closes its index.
fn next_indexing(source: &str, name: &str) -> Option<(usize, usize)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let pattern = format!("{name}[");
    let mut from = 0;
    while let Some(at) = source[from..].find(&pattern).map(|i| from + i) {
        let open = at + pattern.len();
        if source[..at].chars().next_back().is_some_and(is_ident) {
            from = open;
            continue;
        }
        let mut depth = 1;
        let close = source[open..]
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '[' => 1,
                    ']' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| open + i)
            .unwrap_or_else(|| panic!("{name}[ has no closing bracket"));
        return Some((at, close));
    }
    None
}

/// A pipeline key with the f16 inputs of [`with_f16_inputs`] named at its end (the key as it is
/// when there are none).
pub fn f16_inputs_key(key: String, names: &[&str]) -> String {
    if names.is_empty() {
        key
    } else {
        format!("{key}.f16-{}", names.join("-"))
    }
}

/// A pipeline key with the f16 outputs of [`with_f16_outputs`] named at its end.
pub fn f16_outputs_key(key: String, names: &[&str]) -> String {
    if names.is_empty() {
        key
    } else {
        format!("{key}.f16out-{}", names.join("-"))
    }
}

/// `source` with every `name[…]` (name a whole identifier) rewritten as `load_name(…)`,
/// indexes included.
fn loads_through(source: &str, name: &str) -> String {
    let mut out = String::with_capacity(source.len() + 256);
    let mut rest = source;
    while let Some((at, close)) = next_indexing(rest, name) {
        let index = &rest[at + name.len() + 1..close];
        out.push_str(&rest[..at]);
        out.push_str(&format!("load_{name}({})", loads_through(index, name)));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{fill, with_f16_inputs, with_f16_outputs};

    #[test]
    fn fills_every_occurrence_and_leaves_other_braces() {
        let t = "a {{X}} b {{X}} {{Y_2}} // {{...}} {{lower}}";
        assert_eq!(
            fill(t, &[("X", "1"), ("Y_2", "two")]),
            "a 1 b 1 two // {{...}} {{lower}}"
        );
    }

    #[test]
    #[should_panic(expected = "has no value")]
    fn a_slot_without_value_panics() {
        fill("{{X}}", &[]);
    }

    #[test]
    #[should_panic(expected = "no template slot")]
    fn a_value_without_slot_panics() {
        fill("x", &[("X", "1")]);
    }

    #[test]
    fn f16_inputs_load_through_an_unpacking_function() {
        let t = "@group(0) @binding(1) var<storage, read> src: array<f32>; // x\n\
                 @group(0) @binding(2) var<storage, read> wsrc: array<vec4<f32>>;\n\
                 fn f(i: u32) -> f32 { return src[idx[i]] + wsrc[src2[i]].x + src[i + 1u]; }";
        let s = with_f16_inputs(t, &["src", "wsrc"]);
        assert!(
            s.contains("var<storage, read> src: array<u32>; // x\n"),
            "{s}"
        );
        assert!(
            s.contains("var<storage, read> wsrc: array<vec2<u32>>;"),
            "{s}"
        );
        assert!(
            s.contains("return load_src(idx[i]) + load_wsrc(src2[i]).x + load_src(i + 1u);"),
            "{s}"
        );
        assert!(s.contains("unpack2x16float(src[i >> 1u])[i & 1u]"), "{s}");
        assert!(s.contains("let h = wsrc[i];"), "{s}");
    }

    #[test]
    #[should_panic(expected = "declaration to read as f16")]
    fn an_f16_input_without_declaration_panics() {
        with_f16_inputs("fn f() {}", &["x"]);
    }

    #[test]
    fn f16_outputs_store_rounded_pairs() {
        let t = "@group(0) @binding(5) var<storage, read_write> qy: array<vec4<f32>>;\n\
                 fn f(q: u32, z: vec4<f32>) { qy[idx[q]] = select(z, -z, q == 1u); }";
        let s = with_f16_outputs(t, &["qy"]);
        assert!(s.contains("qy: array<vec2<u32>>;"), "{s}");
        assert!(
            s.contains("qy[idx[q]] = f16x4(select(z, -z, q == 1u));"),
            "{s}"
        );
    }

    #[test]
    #[should_panic(expected = "is read, not only stored")]
    fn an_f16_output_that_is_read_panics() {
        let t = "@group(0) @binding(5) var<storage, read_write> qy: array<vec4<f32>>;\n\
                 fn f() { let a = qy[0u]; }";
        with_f16_outputs(t, &["qy"]);
    }
}
