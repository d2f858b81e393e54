//! Naming rules and small syntax helpers shared by the macros.
//!
//! One rule for wire names (STYLE §2): lowerCamelCase of the Rust name. Generated Rust items use
//! PascalCase (action structs, the client trait) and snake_case (the actions module).

use heck::{ToLowerCamelCase, ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Attribute, GenericArgument, Ident, LitStr, Path, PathArguments, PathSegment, Type, Visibility,
};

/// The root every generated path goes through; the facade re-exports the crates there.
pub(crate) fn private() -> TokenStream {
    quote!(::footlights::__private)
}

/// The wire name of a Rust item: lowerCamelCase (`get_count` → `getCount`, `ChatRoom` → `chatRoom`).
pub(crate) fn wire_name(ident: &Ident) -> String {
    ident.unraw().to_string().to_lower_camel_case()
}

/// A PascalCase identifier built from `ident` (`get_count` → `GetCount`), spanned like it.
///
/// Fails when the result is not a usable identifier (for example a keyword such as `Self`).
pub(crate) fn pascal_ident(ident: &Ident) -> syn::Result<Ident> {
    to_ident(
        &ident.unraw().to_string().to_upper_camel_case(),
        ident.span(),
    )
}

/// A snake_case identifier with a suffix (`ChatRoom`, `_actions` → `chat_room_actions`).
pub(crate) fn snake_ident(ident: &Ident, suffix: &str) -> syn::Result<Ident> {
    let name = format!("{}{suffix}", ident.unraw().to_string().to_snake_case());
    to_ident(&name, Span::call_site())
}

/// `ident` followed by `suffix` (`Counter`, `Actions` → `CounterActions`).
pub(crate) fn suffixed_ident(ident: &Ident, suffix: &str) -> syn::Result<Ident> {
    to_ident(&format!("{}{suffix}", ident.unraw()), Span::call_site())
}

fn to_ident(name: &str, span: Span) -> syn::Result<Ident> {
    match syn::parse_str::<Ident>(name) {
        Ok(mut ident) => {
            ident.set_span(span);
            Ok(ident)
        }
        Err(_) => Err(syn::Error::new(
            span,
            format!("the generated name `{name}` is not a usable identifier; rename the item"),
        )),
    }
}

/// Strips invisible groups and parentheses around a type (`(T)` → `T`).
pub(crate) fn peel(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(g) => ty = &g.elem,
            Type::Paren(p) => ty = &p.elem,
            _ => return ty,
        }
    }
}

/// The last segment of a plain path type (`std::result::Result<T, E>` → `Result<T, E>`).
pub(crate) fn last_segment(ty: &Type) -> Option<&PathSegment> {
    match peel(ty) {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// The type arguments of a path segment (`Result<T, E>` → `[T, E]`), lifetimes and constants
/// left out.
pub(crate) fn type_args(seg: &PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether `ty` is the unit type `()`.
pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(peel(ty), Type::Tuple(t) if t.elems.is_empty())
}

/// The `#[doc]` attributes of an item, to carry its docs over to a generated item.
pub(crate) fn doc_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

/// The `#[cfg]` attributes of an item: generated items for it are compiled under the same cfg.
pub(crate) fn cfg_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect()
}

/// Parses the `name = "..."` argument shared by `#[actor]`, `#[action]` and `#[event]`:
/// a non-empty string.
pub(crate) fn parse_wire_name(lit: &LitStr) -> syn::Result<String> {
    let value = lit.value();
    if value.is_empty() {
        return Err(syn::Error::new(lit.span(), "the name must not be empty"));
    }
    Ok(value)
}

/// The visibility `vis` (written on an item of the `impl` block's module) means, written one
/// module deeper: private becomes `pub(super)`, `pub(super)` becomes `pub(in super::super)`,
/// `pub` and `pub(crate)` stay.
pub(crate) fn nested_visibility(vis: &Visibility) -> TokenStream {
    match vis {
        Visibility::Public(_) => quote!(pub),
        Visibility::Inherited => quote!(pub(super)),
        Visibility::Restricted(r) => {
            let mut path = (*r.path).clone();
            Retarget {
                actor: &syn::parse_quote!(Self),
                nested: true,
            }
            .visit_path_mut(&mut path);
            if path.is_ident("crate") {
                quote!(pub(crate))
            } else if path.is_ident("super") {
                quote!(pub(super))
            } else {
                quote!(pub(in #path))
            }
        }
    }
}

/// Rewrites a type written inside the actor's `impl` block so it means the same thing in a
/// generated item: `Self` becomes the actor type, and with `nested`, `self::`/`super::` paths are
/// adjusted for one more module level (the generated `<actor>_actions` module).
pub(crate) struct Retarget<'a> {
    /// The actor type, as written after `impl`.
    pub(crate) actor: &'a Type,
    /// Whether the rewritten type is placed one module deeper than the `impl` block.
    pub(crate) nested: bool,
}

impl Retarget<'_> {
    /// A rewritten copy of `ty`.
    pub(crate) fn ty(&mut self, ty: &Type) -> Type {
        let mut ty = ty.clone();
        self.visit_type_mut(&mut ty);
        ty
    }
}

impl VisitMut for Retarget<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty
            && p.qself.is_none()
            && p.path.leading_colon.is_none()
            && p.path.segments.len() == 1
            && p.path.segments[0].ident == "Self"
            && p.path.segments[0].arguments.is_none()
        {
            let mut actor = self.actor.clone();
            if self.nested {
                // The actor type itself may start with `self::`/`super::` too.
                visit_mut::visit_type_mut(self, &mut actor);
            }
            *ty = actor;
            return;
        }
        visit_mut::visit_type_mut(self, ty);
    }

    fn visit_path_mut(&mut self, path: &mut Path) {
        if self.nested && path.leading_colon.is_none() {
            let first = path.segments.first().map(|s| s.ident.to_string());
            match first.as_deref() {
                Some("super") => {
                    let extra = PathSegment::from(Ident::new("super", Span::call_site()));
                    path.segments.insert(0, extra);
                }
                Some("self") => {
                    if let Some(seg) = path.segments.first_mut() {
                        seg.ident = Ident::new("super", seg.ident.span());
                    }
                }
                _ => {}
            }
        }
        visit_mut::visit_path_mut(self, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::parse_quote;

    fn ident(s: &str) -> Ident {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn wire_names_are_lower_camel_case() {
        assert_eq!(wire_name(&ident("get_count")), "getCount");
        assert_eq!(wire_name(&ident("increment")), "increment");
        assert_eq!(wire_name(&ident("ChatRoom")), "chatRoom");
        assert_eq!(wire_name(&ident("Counter")), "counter");
        assert_eq!(wire_name(&ident("r#type")), "type");
        assert_eq!(wire_name(&ident("set_x2_value")), "setX2Value");
    }

    #[test]
    fn generated_idents() {
        assert_eq!(pascal_ident(&ident("get_count")).unwrap(), "GetCount");
        assert_eq!(pascal_ident(&ident("r#match")).unwrap(), "Match");
        assert_eq!(
            snake_ident(&ident("ChatRoom"), "_actions").unwrap(),
            "chat_room_actions"
        );
        assert_eq!(
            suffixed_ident(&ident("ChatRoom"), "Actions").unwrap(),
            "ChatRoomActions"
        );
    }

    #[test]
    fn keyword_results_are_rejected() {
        let err = pascal_ident(&ident("self_")).unwrap_err();
        assert!(err.to_string().contains("`Self`"), "{err}");
    }

    #[test]
    fn empty_names_are_rejected() {
        assert!(parse_wire_name(&parse_quote!("")).is_err());
        assert_eq!(parse_wire_name(&parse_quote!("x")).unwrap(), "x");
    }

    #[test]
    fn segments_and_args() {
        let ty: Type = parse_quote!(std::result::Result<(i64), MyError>);
        let seg = last_segment(&ty).unwrap();
        assert_eq!(seg.ident, "Result");
        let args = type_args(seg);
        assert_eq!(args.len(), 2);
        assert!(is_unit(&parse_quote!(())));
        assert!(!is_unit(args[0]));
        assert!(last_segment(&parse_quote!(&str)).is_none());
    }

    fn retarget(ty: Type, nested: bool) -> String {
        let actor: Type = parse_quote!(super::Counter);
        Retarget {
            actor: &actor,
            nested,
        }
        .ty(&ty)
        .to_token_stream()
        .to_string()
    }

    #[test]
    fn self_becomes_the_actor_type() {
        assert_eq!(
            retarget(parse_quote!(Vec<Self>), false),
            "Vec < super :: Counter >"
        );
        assert_eq!(
            retarget(parse_quote!(Option<Self>), true),
            "Option < super :: super :: Counter >"
        );
    }

    #[test]
    fn visibility_moves_down_a_module() {
        let nested = |vis: Visibility| nested_visibility(&vis).to_string();
        assert_eq!(nested(parse_quote!()), "pub (super)");
        assert_eq!(nested(parse_quote!(pub)), "pub");
        assert_eq!(nested(parse_quote!(pub(crate))), "pub (crate)");
        assert_eq!(nested(parse_quote!(pub(self))), "pub (super)");
        assert_eq!(nested(parse_quote!(pub(super))), "pub (in super :: super)");
        assert_eq!(
            nested(parse_quote!(pub(in crate::a))),
            "pub (in crate :: a)"
        );
    }

    #[test]
    fn relative_paths_move_down_a_module() {
        assert_eq!(retarget(parse_quote!(self::Item), true), "super :: Item",);
        assert_eq!(
            retarget(parse_quote!(Vec<super::Item>), true),
            "Vec < super :: super :: Item >",
        );
        assert_eq!(retarget(parse_quote!(crate::Item), true), "crate :: Item");
        assert_eq!(retarget(parse_quote!(self::Item), false), "self :: Item");
    }
}
