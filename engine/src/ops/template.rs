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

#[cfg(test)]
mod tests {
    use super::fill;

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
}
