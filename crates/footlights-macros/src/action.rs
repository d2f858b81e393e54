//! `#[action]` methods: reading their signature, and the items generated for each one.
//!
//! For a method `increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64` on `Counter`:
//! the struct `counter_actions::Increment { pub amount: i64 }`, its `protocol::Action` impl,
//! `impl core::Handler<counter_actions::Increment> for Counter`, a line in `Actor::actions`,
//! and a method of the client trait `CounterActions`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, ImplItemFn, Pat, ReturnType, Type, Visibility};

use crate::names::{
    Retarget, cfg_attrs, doc_attrs, is_unit, last_segment, nested_visibility, parse_wire_name,
    pascal_ident, peel, private, type_args, wire_name,
};

/// How the runtime runs an action, from its receiver and return type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `&self`: `ReadHandler`, never saves.
    Read,
    /// `&mut self`: `Handler`.
    Write,
    /// `&mut self` returning `Deferred<T>`: `DeferredHandler`.
    Deferred,
}

/// What an action method returns, as the macro understands it.
#[derive(Clone)]
pub(crate) struct Returns {
    /// The action's `Output`: the `T` in `T`, `Result<T, E>`, `Deferred<T>` or
    /// `Result<Deferred<T>, E>`; `()` when the method returns nothing.
    pub(crate) output: Type,
    /// Whether the method returns a `Result` whose error converts into `ActionError`.
    pub(crate) fallible: bool,
    /// Whether the answer is a `Deferred<T>`.
    pub(crate) deferred: bool,
    /// Whether the method returns `()` (written or not); the call is then a statement.
    pub(crate) unit: bool,
    /// Where errors about the return type should point.
    pub(crate) span: Span,
}

/// Classifies a method's return type.
///
/// `Result` and `Deferred` are recognised by the last segment of their path, so
/// `std::result::Result<T, E>`, `io::Result<T>` and `footlights::Deferred<T>` all count.
pub(crate) fn classify_return(ret: &ReturnType) -> syn::Result<Returns> {
    let ty = match ret {
        ReturnType::Default => {
            return Ok(Returns {
                output: syn::parse_quote!(()),
                fallible: false,
                deferred: false,
                unit: true,
                span: Span::call_site(),
            });
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    let span = ty.span();
    check_owned(
        ty,
        "action results are sent to the caller, so they must be owned values",
    )?;
    let (inner, fallible) = match last_segment(ty) {
        Some(seg) if seg.ident == "Result" => match type_args(seg).first() {
            Some(ok) => (*ok, true),
            None => {
                return Err(syn::Error::new_spanned(
                    ty,
                    "write the result's type arguments, as in `Result<T, E>`",
                ));
            }
        },
        _ => (ty, false),
    };
    check_owned(
        inner,
        "action results are sent to the caller, so they must be owned values",
    )?;
    let (output, deferred) = match last_segment(inner) {
        Some(seg) if seg.ident == "Deferred" => match type_args(seg).as_slice() {
            [t] => ((*t).clone(), true),
            _ => return Err(syn::Error::new_spanned(inner, "write `Deferred<T>`")),
        },
        _ => (inner.clone(), false),
    };
    Ok(Returns {
        unit: !fallible && !deferred && is_unit(&output),
        output,
        fallible,
        deferred,
        span,
    })
}

/// Rejects borrowed and `impl Trait` types where an owned, nameable type is needed.
fn check_owned(ty: &Type, why: &str) -> syn::Result<()> {
    match peel(ty) {
        Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            format!("{why}: use `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`"),
        )),
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            format!("{why}: name a concrete type here (for async work, write `async fn`)"),
        )),
        Type::Infer(_) => Err(syn::Error::new_spanned(ty, "write the type out in full")),
        _ => Ok(()),
    }
}

/// One argument of an action: a field of its struct and a parameter of its client method.
#[derive(Clone)]
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// An `#[action]` method, read and checked.
#[derive(Clone)]
pub(crate) struct ActionFn {
    /// The Rust method name; also the client method name.
    pub(crate) method: Ident,
    /// The method's visibility, which the action struct and its fields get too.
    pub(crate) vis: Visibility,
    /// The wire name.
    pub(crate) wire_name: String,
    /// The generated struct's name (PascalCase of the method name).
    pub(crate) struct_ident: Ident,
    pub(crate) kind: Kind,
    /// Whether the method takes `&Ctx<Self>` right after the receiver.
    pub(crate) has_ctx: bool,
    pub(crate) is_async: bool,
    pub(crate) args: Vec<Arg>,
    pub(crate) returns: Returns,
    /// The method's docs, repeated on the client method.
    pub(crate) docs: Vec<Attribute>,
    /// The method's `#[cfg]`s, repeated on every generated item.
    pub(crate) cfgs: Vec<Attribute>,
    /// The action's own timeout in milliseconds, from `#[action(timeout_ms = N)]`.
    pub(crate) timeout_ms: Option<u64>,
}

/// Whether an attribute is `#[action]` (or `#[footlights::action]`).
pub(crate) fn is_action_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    path.is_ident("action")
        || (path.segments.len() == 2
            && path.segments[0].ident == "footlights"
            && path.segments[1].ident == "action")
}

/// What `#[action(..)]` may say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ActionAttr {
    /// The wire name override.
    pub(crate) name: Option<String>,
    /// The action's own timeout, in milliseconds.
    pub(crate) timeout_ms: Option<u64>,
}

/// Reads `#[action]` / `#[action(name = "x", timeout_ms = 500)]`.
pub(crate) fn parse_action_attr(attr: &Attribute) -> syn::Result<ActionAttr> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(ActionAttr::default()),
        syn::Meta::List(_) => {
            let mut out = ActionAttr::default();
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    if out.name.is_some() {
                        return Err(meta.error("`name` is given twice"));
                    }
                    out.name = Some(parse_wire_name(&meta.value()?.parse()?)?);
                    Ok(())
                } else if meta.path.is_ident("timeout_ms") {
                    if out.timeout_ms.is_some() {
                        return Err(meta.error("`timeout_ms` is given twice"));
                    }
                    let lit: syn::LitInt = meta.value()?.parse()?;
                    let ms: u64 = lit.base10_parse()?;
                    if ms == 0 {
                        return Err(syn::Error::new_spanned(lit, "a timeout of 0 ms would fail every call"));
                    }
                    out.timeout_ms = Some(ms);
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown `#[action]` argument; the arguments are `name = \"..\"` and `timeout_ms = N`",
                    ))
                }
            })?;
            Ok(out)
        }
        syn::Meta::NameValue(nv) => Err(syn::Error::new_spanned(
            nv,
            "write `#[action(name = \"..\")]` to choose the wire name",
        )),
    }
}

/// Whether a parameter type is the context, `&Ctx<..>`; `Some(true)` when it is `&mut`.
fn ctx_param(ty: &Type) -> Option<bool> {
    if let Type::Reference(r) = peel(ty)
        && last_segment(&r.elem).is_some_and(|seg| seg.ident == "Ctx")
    {
        return Some(r.mutability.is_some());
    }
    None
}

/// Reads and checks an `#[action]` method (its `#[action]` attribute already removed).
pub(crate) fn analyze(method: &ImplItemFn, attr: ActionAttr) -> syn::Result<ActionFn> {
    let ActionAttr { name, timeout_ms } = attr;
    let sig = &method.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "actions cannot be generic: each action has one argument list and one result type",
        ));
    }
    if let Some(unsafety) = sig.unsafety {
        return Err(syn::Error::new_spanned(
            unsafety,
            "actions cannot be `unsafe fn`",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "actions cannot be variadic",
        ));
    }
    let mut inputs = sig.inputs.iter();
    let receiver = match inputs.next() {
        Some(FnArg::Receiver(r)) => r,
        _ => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "an `#[action]` method takes `&self` (reads state) or `&mut self` (may change it)",
            ));
        }
    };
    let mutable = match peel(&receiver.ty) {
        Type::Reference(r) => r.mutability.is_some(),
        _ => {
            return Err(syn::Error::new_spanned(
                receiver,
                "actions take `&self` or `&mut self`; the actor keeps its state, so `self` \
                 cannot be taken by value",
            ));
        }
    };

    let mut has_ctx = false;
    let mut args = Vec::new();
    for (i, input) in inputs.enumerate() {
        let FnArg::Typed(pat_ty) = input else {
            return Err(syn::Error::new_spanned(input, "unexpected second receiver"));
        };
        match ctx_param(&pat_ty.ty) {
            Some(true) => {
                return Err(syn::Error::new_spanned(
                    &pat_ty.ty,
                    "take the context as `&Ctx<Self>`, not `&mut`",
                ));
            }
            Some(false) if i == 0 => {
                has_ctx = true;
                continue;
            }
            Some(false) => {
                return Err(syn::Error::new_spanned(
                    &pat_ty.ty,
                    "the `&Ctx<Self>` parameter must come first, right after the receiver",
                ));
            }
            None => {}
        }
        let ident = match &*pat_ty.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "unsupported pattern: action arguments must be plain names such as \
                     `amount: i64`, because each one becomes a field of the action struct",
                ));
            }
        };
        check_owned(
            &pat_ty.ty,
            "action arguments arrive over the wire, so they must be owned values",
        )?;
        args.push(Arg {
            ident,
            ty: (*pat_ty.ty).clone(),
        });
    }

    let returns = classify_return(&sig.output)?;
    let kind = match (mutable, returns.deferred) {
        (false, false) => Kind::Read,
        (true, false) => Kind::Write,
        (true, true) => Kind::Deferred,
        (false, true) => {
            return Err(syn::Error::new_spanned(
                receiver,
                "an action returning `Deferred` takes `&mut self`: it runs as a write, then \
                 answers later",
            ));
        }
    };

    Ok(ActionFn {
        method: sig.ident.clone(),
        vis: method.vis.clone(),
        timeout_ms,
        wire_name: name.unwrap_or_else(|| wire_name(&sig.ident)),
        struct_ident: pascal_ident(&sig.ident)?,
        kind,
        has_ctx,
        is_async: sig.asyncness.is_some(),
        args,
        returns,
        docs: doc_attrs(&method.attrs),
        cfgs: cfg_attrs(&method.attrs),
    })
}

/// What the items of one action need to know about the actor.
pub(crate) struct ActorCx<'a> {
    /// The actor type, as written after `impl`.
    pub(crate) self_ty: &'a Type,
    /// Its name, for docs.
    pub(crate) type_name: String,
    /// The generated module holding the action structs.
    pub(crate) module: &'a Ident,
}

impl ActionFn {
    /// The struct's path from the `impl` block's module.
    fn struct_path(&self, cx: &ActorCx<'_>) -> TokenStream {
        let module = cx.module;
        let ident = &self.struct_ident;
        quote!(#module::#ident)
    }

    /// The action's `Output`, as a type valid outside the `impl` block.
    fn output(&self, cx: &ActorCx<'_>) -> Type {
        Retarget {
            actor: cx.self_ty,
            nested: false,
        }
        .ty(&self.returns.output)
    }

    /// The struct and its `Debug` impl, placed in the generated module.
    ///
    /// The struct is exactly as visible as the method: a `pub` struct for a private method
    /// could not name private argument types in its `Action::Output` (error E0446).
    pub(crate) fn struct_item(&self, cx: &ActorCx<'_>) -> TokenStream {
        let ident = &self.struct_ident;
        let vis = nested_visibility(&self.vis);
        let cfgs = &self.cfgs;
        let doc = format!(
            "The arguments of the `{}` action (`{}::{}`), sent as a positional list in this order.",
            self.wire_name, cx.type_name, self.method
        );
        let mut retarget = Retarget {
            actor: cx.self_ty,
            nested: true,
        };
        let fields = self.args.iter().map(|arg| {
            let name = &arg.ident;
            let ty = retarget.ty(&arg.ty);
            let doc = format!("The `{name}` argument.");
            quote!(#[doc = #doc] #vis #name: #ty,)
        });
        let debug_name = ident.to_string();
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #vis struct #ident { #(#fields)* }

            #(#cfgs)*
            impl ::core::fmt::Debug for #ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#debug_name).finish_non_exhaustive()
                }
            }
        }
    }

    /// `impl protocol::Action for <module>::<Struct>`.
    pub(crate) fn action_impl(&self, cx: &ActorCx<'_>) -> TokenStream {
        let p = private();
        let path = self.struct_path(cx);
        let cfgs = &self.cfgs;
        let name = &self.wire_name;
        let output = self.output(cx);
        let module = cx.module;
        let (into_body, from_body) = if self.args.is_empty() {
            (
                quote!(::core::result::Result::Ok(::std::vec::Vec::new())),
                quote! {
                    let _ = args;
                    ::core::result::Result::Ok(Self {})
                },
            )
        } else {
            // Spanned at each argument's type, so a type that cannot travel is reported there.
            let wire = |ty: &Type| {
                let ty = Retarget {
                    actor: cx.self_ty,
                    nested: false,
                }
                .ty(ty);
                quote_spanned!(ty.span()=> <#ty as #module::__footlights::WireValue>)
            };
            let encode = self.args.iter().map(|a| {
                let (ident, wire) = (&a.ident, wire(&a.ty));
                quote_spanned!(a.ty.span()=> #wire::encode(&self.#ident)?)
            });
            let decode = self.args.iter().enumerate().map(|(i, a)| {
                let (ident, wire) = (&a.ident, wire(&a.ty));
                // Counted from 1, as a person reading the message counts.
                let what = format!("argument {} `{ident}` of action `{name}`", i + 1);
                let ty = type_text(&a.ty);
                quote_spanned!(a.ty.span()=> #ident: #wire::decode(args.next(), #what, #ty)?)
            });
            (
                quote!(::core::result::Result::Ok(::std::vec![#(#encode),*])),
                quote! {
                    let mut args = ::core::iter::IntoIterator::into_iter(args);
                    ::core::result::Result::Ok(Self { #(#decode),* })
                },
            )
        };
        quote! {
            #(#cfgs)*
            impl #p::protocol::Action for #path {
                const NAME: &'static str = #name;
                type Output = #output;

                fn into_args(
                    self,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<#p::protocol::Value>,
                    #p::protocol::ActionError,
                > {
                    #into_body
                }

                fn from_args(
                    args: ::std::vec::Vec<#p::protocol::Value>,
                ) -> ::core::result::Result<Self, #p::protocol::ActionError> {
                    #from_body
                }
            }
        }
    }

    /// The `Handler`, `ReadHandler` or `DeferredHandler` impl that calls the method.
    pub(crate) fn handler_impl(&self, cx: &ActorCx<'_>) -> TokenStream {
        let p = private();
        let self_ty = cx.self_ty;
        let path = self.struct_path(cx);
        let cfgs = &self.cfgs;
        let method = &self.method;
        let output = self.output(cx);

        let ctx = if self.has_ctx {
            format_ident!("ctx")
        } else {
            format_ident!("_ctx")
        };
        let msg = if self.args.is_empty() {
            format_ident!("_msg")
        } else {
            format_ident!("msg")
        };
        let mut call_args = vec![quote!(self)];
        if self.has_ctx {
            call_args.push(quote!(#ctx));
        }
        call_args.extend(self.args.iter().map(|a| {
            let ident = &a.ident;
            quote!(#msg.#ident)
        }));
        let mut call = quote!(<#self_ty>::#method(#(#call_args),*));
        if self.is_async {
            call = quote!(#call.await);
        }
        let body = if self.returns.unit {
            quote! {
                #call;
                ::core::result::Result::Ok(())
            }
        } else if self.returns.fallible {
            // Spanned at the return type, so a missing `Into<ActionError>` points there.
            let convert = quote_spanned!(self.returns.span=>
                ::core::convert::Into::<#p::protocol::ActionError>::into(error)
            );
            quote! {
                match #call {
                    ::core::result::Result::Ok(value) => ::core::result::Result::Ok(value),
                    ::core::result::Result::Err(error) => ::core::result::Result::Err(#convert),
                }
            }
        } else {
            quote!(::core::result::Result::Ok(#call))
        };

        let (trait_name, receiver, answer) = match self.kind {
            Kind::Read => (quote!(ReadHandler), quote!(&self), output.to_token_stream()),
            Kind::Write => (quote!(Handler), quote!(&mut self), output.to_token_stream()),
            Kind::Deferred => (
                quote!(DeferredHandler),
                quote!(&mut self),
                quote!(#p::core::Deferred<#output>),
            ),
        };
        quote! {
            #(#cfgs)*
            impl #p::core::#trait_name<#path> for #self_ty {
                async fn handle(
                    #receiver,
                    #ctx: &#p::core::Ctx<Self>,
                    #msg: #path,
                ) -> ::core::result::Result<#answer, #p::protocol::ActionError> {
                    #body
                }
            }
        }
    }

    /// The statement registering the action in `Actor::actions`.
    pub(crate) fn registration(&self, cx: &ActorCx<'_>, table: &Ident) -> TokenStream {
        let path = self.struct_path(cx);
        let cfgs = &self.cfgs;
        let register = match self.kind {
            Kind::Read => quote!(read),
            Kind::Write => quote!(write),
            Kind::Deferred => quote!(deferred),
        };
        let timeout = self.timeout_ms.map(|ms| {
            let p = private();
            quote! {
                #(#cfgs)*
                #table.timeout(
                    <#path as #p::protocol::Action>::NAME,
                    ::core::time::Duration::from_millis(#ms),
                );
            }
        });
        quote! {
            #(#cfgs)*
            #table.#register::<#path>();
            #timeout
        }
    }

    /// The method of the client extension trait.
    pub(crate) fn client_method(&self, cx: &ActorCx<'_>) -> TokenStream {
        let p = private();
        let self_ty = cx.self_ty;
        let path = self.struct_path(cx);
        let cfgs = &self.cfgs;
        let method = &self.method;
        let output = self.output(cx);
        let mut retarget = Retarget {
            actor: cx.self_ty,
            nested: false,
        };
        let params = self.args.iter().map(|a| {
            let ident = &a.ident;
            let ty = retarget.ty(&a.ty);
            quote!(#ident: #ty)
        });
        let idents = self.args.iter().map(|a| &a.ident);
        let docs = if self.docs.is_empty() {
            let doc = format!("Calls the `{}` action.", self.wire_name);
            quote!(#[doc = #doc])
        } else {
            let docs = &self.docs;
            quote!(#(#docs)*)
        };
        quote! {
            #(#cfgs)*
            #docs
            fn #method(
                &self,
                #(#params),*
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<#output, #p::protocol::ActionError>,
            > + ::core::marker::Send {
                #p::client::ActionCaller::<#self_ty>::call(self, #path { #(#idents),* })
            }
        }
    }
}

/// A type as its author wrote it, for messages: `Vec<String>`, not `Vec < String >`.
fn type_text(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (spaced, tight) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        ("( ", "("),
        (" )", ")"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn returns(ret: ReturnType) -> Returns {
        classify_return(&ret).unwrap()
    }

    fn text(ty: &Type) -> String {
        ty.to_token_stream().to_string()
    }

    #[test]
    fn plain_values() {
        let r = returns(parse_quote!(-> i64));
        assert_eq!(text(&r.output), "i64");
        assert!(!r.fallible && !r.deferred && !r.unit);
    }

    #[test]
    fn nothing_and_unit() {
        for ret in [parse_quote!(), parse_quote!(-> ())] {
            let r = returns(ret);
            assert_eq!(text(&r.output), "()");
            assert!(r.unit && !r.fallible && !r.deferred);
        }
    }

    #[test]
    fn results_by_last_segment() {
        let r = returns(parse_quote!(-> Result<Vec<String>, MyError>));
        assert_eq!(text(&r.output), "Vec < String >");
        assert!(r.fallible && !r.deferred && !r.unit);

        let r = returns(parse_quote!(-> std::io::Result<u8>));
        assert_eq!(text(&r.output), "u8");
        assert!(r.fallible);

        let r = returns(parse_quote!(-> Result<(), ActionError>));
        assert!(r.fallible && !r.unit);
    }

    #[test]
    fn deferred_answers() {
        let r = returns(parse_quote!(-> Deferred<String>));
        assert_eq!(text(&r.output), "String");
        assert!(r.deferred && !r.fallible);

        let r = returns(parse_quote!(-> Result<footlights::Deferred<i64>, ActionError>));
        assert_eq!(text(&r.output), "i64");
        assert!(r.deferred && r.fallible);
    }

    #[test]
    fn borrowed_and_opaque_results_are_errors() {
        assert!(classify_return(&parse_quote!(-> &str)).is_err());
        assert!(classify_return(&parse_quote!(-> Result<&str, E>)).is_err());
        assert!(classify_return(&parse_quote!(-> impl Serialize)).is_err());
        assert!(classify_return(&parse_quote!(-> Result)).is_err());
        assert!(classify_return(&parse_quote!(-> Deferred<A, B>)).is_err());
    }

    fn action(method: ImplItemFn) -> syn::Result<ActionFn> {
        analyze(&method, ActionAttr::default())
    }

    #[test]
    fn reads_a_write_action_with_ctx() {
        let a = action(parse_quote! {
            /// Adds.
            #[cfg(feature = "x")]
            fn increment(&mut self, ctx: &Ctx<Self>, amount: i64, mut note: Option<String>) -> i64 {
                self.count
            }
        })
        .unwrap();
        assert_eq!(a.wire_name, "increment");
        assert_eq!(a.struct_ident, "Increment");
        assert_eq!(a.kind, Kind::Write);
        assert!(a.has_ctx && !a.is_async);
        let names: Vec<String> = a.args.iter().map(|a| a.ident.to_string()).collect();
        assert_eq!(names, ["amount", "note"]);
        assert_eq!(a.docs.len(), 1);
        assert_eq!(a.cfgs.len(), 1);
    }

    #[test]
    fn reads_kinds() {
        let a = action(parse_quote!(
            async fn get_count(&self) -> i64 {
                0
            }
        ))
        .unwrap();
        assert_eq!((a.kind, a.is_async, a.has_ctx), (Kind::Read, true, false));
        assert_eq!(a.wire_name, "getCount");
        assert_eq!(a.struct_ident, "GetCount");

        let a = action(parse_quote!(
            fn later(&mut self, c: &footlights::Ctx<Counter>) -> Deferred<i64> {
                x
            }
        ))
        .unwrap();
        assert_eq!((a.kind, a.has_ctx), (Kind::Deferred, true));

        let a = analyze(
            &parse_quote!(
                fn reset(&mut self) {}
            ),
            ActionAttr {
                name: Some("wipe".into()),
                timeout_ms: None,
            },
        )
        .unwrap();
        assert_eq!(a.wire_name, "wipe");
        assert!(a.returns.unit);
    }

    fn error_of(method: ImplItemFn) -> String {
        match action(method) {
            Ok(a) => panic!("expected an error for `{}`", a.method),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rejects_bad_signatures() {
        assert!(
            error_of(parse_quote!(
                fn f(x: i64) -> i64 {
                    x
                }
            ))
            .contains("`&self`")
        );
        assert!(
            error_of(parse_quote!(
                fn f(self) {}
            ))
            .contains("by value")
        );
        assert!(
            error_of(parse_quote!(
                fn f(&self) -> Deferred<i64> {
                    x
                }
            ))
            .contains("`&mut self`")
        );
        assert!(
            error_of(parse_quote!(
                fn f(&self, (a, b): (i64, i64)) {}
            ))
            .contains("pattern")
        );
        assert!(
            error_of(parse_quote!(
                fn f(&self, ref a: i64) {}
            ))
            .contains("pattern")
        );
        assert!(
            error_of(parse_quote!(
                fn f(&self, _: i64) {}
            ))
            .contains("pattern")
        );
        assert!(
            error_of(parse_quote!(
                fn f<T>(&self, a: T) {}
            ))
            .contains("generic")
        );
        assert!(
            error_of(parse_quote!(
                fn f(&self, a: &str) {}
            ))
            .contains("owned")
        );
        assert!(
            error_of(parse_quote!(
                fn f(&self, a: i64, c: &Ctx<Self>) {}
            ))
            .contains("first")
        );
        assert!(
            error_of(parse_quote!(
                fn f(&self, c: &mut Ctx<Self>) {}
            ))
            .contains("not `&mut`")
        );
        assert!(
            error_of(parse_quote!(
                unsafe fn f(&self) {}
            ))
            .contains("unsafe")
        );
    }

    #[test]
    fn action_attribute_arguments() {
        let attr: Attribute = parse_quote!(#[action]);
        assert!(is_action_attr(&attr));
        assert_eq!(parse_action_attr(&attr).unwrap(), ActionAttr::default());
        let attr: Attribute = parse_quote!(#[footlights::action(name = "bump")]);
        assert!(is_action_attr(&attr));
        assert_eq!(
            parse_action_attr(&attr).unwrap().name.as_deref(),
            Some("bump")
        );
        let attr: Attribute = parse_quote!(#[action(timeout_ms = 250)]);
        assert_eq!(parse_action_attr(&attr).unwrap().timeout_ms, Some(250));
        assert!(parse_action_attr(&parse_quote!(#[action(timeout_ms = 0)])).is_err());
        assert!(parse_action_attr(&parse_quote!(#[action(timeout_ms = "x")])).is_err());
        assert!(!is_action_attr(&parse_quote!(#[other::action])));
        assert!(parse_action_attr(&parse_quote!(#[action(nme = "x")])).is_err());
        assert!(parse_action_attr(&parse_quote!(#[action(name = "")])).is_err());
        assert!(parse_action_attr(&parse_quote!(#[action = "x"])).is_err());
        assert!(parse_action_attr(&parse_quote!(#[action(name = "a", name = "b")])).is_err());
    }
}
