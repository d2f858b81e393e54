//! `#[derive(Event)]`: the wire name, and for tuple structs of several fields, one argument per
//! field; structs without fields are events without arguments.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, GenericParam, Index, LitStr};

use crate::names::{parse_wire_name, private, wire_name};

/// Expands `#[derive(Event)]`.
pub(crate) fn expand(item: TokenStream) -> TokenStream {
    try_expand(item).unwrap_or_else(|e| e.to_compile_error())
}

/// Reads the `#[event(name = "..")]` attributes: the wire name override, if any.
fn event_name(input: &DeriveInput) -> syn::Result<Option<String>> {
    let mut name = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                if name.is_some() {
                    return Err(meta.error("`name` is given twice"));
                }
                name = Some(parse_wire_name(&meta.value()?.parse::<LitStr>()?)?);
                Ok(())
            } else {
                Err(meta.error("unknown `#[event]` argument; the only one is `name = \"..\"`"))
            }
        })?;
    }
    Ok(name)
}

fn try_expand(item: TokenStream) -> syn::Result<TokenStream> {
    let mut input: DeriveInput = syn::parse2(item)?;
    let name = event_name(&input)?.unwrap_or_else(|| wire_name(&input.ident));
    let p = private();

    // The struct's empty value (`Self`, `Self()` or `Self {}`) for events without arguments.
    let mut empty = None;
    let spread_count = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Unnamed(fields) if fields.unnamed.len() >= 2 => Some(fields.unnamed.len()),
            Fields::Unit => {
                empty = Some(quote!(Self));
                None
            }
            Fields::Unnamed(fields) if fields.unnamed.is_empty() => {
                empty = Some(quote!(Self()));
                None
            }
            Fields::Named(fields) if fields.named.is_empty() => {
                empty = Some(quote!(Self {}));
                None
            }
            _ => None,
        },
        Data::Enum(_) => None,
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`#[derive(Event)]` works on structs and enums, not unions",
            ));
        }
    };

    // Events are `'static` and travel through serde: bound every type parameter accordingly.
    let mut type_params = Vec::new();
    for param in &input.generics.params {
        match param {
            GenericParam::Lifetime(l) => {
                return Err(syn::Error::new_spanned(
                    l,
                    "events cannot borrow: they are sent to other tasks, so they must be `'static`",
                ));
            }
            GenericParam::Type(t) => type_params.push(t.ident.clone()),
            GenericParam::Const(_) => {}
        }
    }
    if !type_params.is_empty() {
        let where_clause = input.generics.make_where_clause();
        for ident in &type_params {
            where_clause.predicates.push(syn::parse_quote! {
                #ident: #p::serde::Serialize
                    + #p::serde::de::DeserializeOwned
                    + ::core::marker::Send
                    + 'static
            });
        }
    }

    let spread = spread_count.map(|count| {
        let indices: Vec<Index> = (0..count).map(Index::from).collect();
        let decode = indices.iter().map(|_| {
            quote! {
                #p::protocol::from_value_exact(
                    ::core::option::Option::unwrap_or(args.next(), #p::protocol::Value::Null),
                )?,
            }
        });
        quote! {
            fn to_args(
                &self,
            ) -> ::core::result::Result<
                ::std::vec::Vec<#p::protocol::Value>,
                #p::protocol::ValueError,
            > {
                ::core::result::Result::Ok(::std::vec![
                    #(#p::protocol::to_value_exact(&self.#indices)?,)*
                ])
            }

            fn from_args(
                args: ::std::vec::Vec<#p::protocol::Value>,
            ) -> ::core::result::Result<Self, #p::protocol::ValueError> {
                let mut args = ::core::iter::IntoIterator::into_iter(args);
                ::core::result::Result::Ok(Self(#(#decode)*))
            }
        }
    });

    // No fields, no arguments: what a JavaScript `broadcast("ping")` sends. Any arguments are
    // ignored on the way back, as extra ones are for every event.
    let no_args = empty.map(|value| {
        quote! {
            fn to_args(
                &self,
            ) -> ::core::result::Result<
                ::std::vec::Vec<#p::protocol::Value>,
                #p::protocol::ValueError,
            > {
                ::core::result::Result::Ok(::std::vec::Vec::new())
            }

            fn from_args(
                _args: ::std::vec::Vec<#p::protocol::Value>,
            ) -> ::core::result::Result<Self, #p::protocol::ValueError> {
                ::core::result::Result::Ok(#value)
            }
        }
    });

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #p::protocol::Event for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            #spread
            #no_args
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_ok(input: TokenStream) -> syn::ItemImpl {
        syn::parse2(try_expand(input).unwrap()).unwrap()
    }

    fn fn_names(imp: &syn::ItemImpl) -> Vec<String> {
        imp.items
            .iter()
            .filter_map(|i| match i {
                syn::ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            })
            .collect()
    }

    fn const_value(imp: &syn::ItemImpl) -> String {
        imp.items
            .iter()
            .find_map(|i| match i {
                syn::ImplItem::Const(c) => Some(quote!(#c).to_string()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn default_name_and_trait_defaults() {
        let imp = expand_ok(quote!(
            struct NewCount(pub i64);
        ));
        assert!(const_value(&imp).contains("\"newCount\""));
        assert!(fn_names(&imp).is_empty());
    }

    #[test]
    fn renamed() {
        let imp = expand_ok(quote! {
            #[event(name = "count")]
            enum Change { Up, Down }
        });
        assert!(const_value(&imp).contains("\"count\""));
    }

    #[test]
    fn tuples_of_several_fields_spread() {
        let imp = expand_ok(quote!(
            struct Moved(pub i32, pub i32, String);
        ));
        assert_eq!(fn_names(&imp), ["to_args", "from_args"]);
        let code = quote!(#imp).to_string();
        assert!(code.contains("self . 2"), "{code}");
    }

    #[test]
    fn structs_without_fields_have_no_arguments() {
        for input in [
            quote!(
                struct Ping;
            ),
            quote!(
                struct Ping();
            ),
            quote!(
                struct Ping {}
            ),
        ] {
            let imp = expand_ok(input.clone());
            assert_eq!(fn_names(&imp), ["to_args", "from_args"], "{input}");
        }
    }

    #[test]
    fn generics_get_serde_bounds() {
        let imp = expand_ok(quote!(
            struct Wrapped<T>(T);
        ));
        let bounds = quote!(#imp).to_string();
        assert!(bounds.contains("DeserializeOwned"), "{bounds}");
    }

    #[test]
    fn errors() {
        let bad: [TokenStream; 4] = [
            quote!(
                #[event(nam = "x")]
                struct A;
            ),
            quote!(
                #[event(name = "")]
                struct A;
            ),
            quote!(union U { a: u8 }),
            quote!(
                struct B<'a>(&'a str);
            ),
        ];
        for input in bad {
            assert!(try_expand(input.clone()).is_err(), "{input}");
        }
    }
}
