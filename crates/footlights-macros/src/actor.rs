//! `#[actor]`: reads an inherent `impl` block and writes the trait impls behind it.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, ReturnType, Token, Type, Visibility};

use crate::action::{ActionFn, ActorCx, analyze, is_action_attr, parse_action_attr};
use crate::names::{parse_wire_name, private, snake_ident, suffixed_ident, wire_name};

/// The lifecycle hooks of `core::Actor`, and whether the trait declares each one as returning a
/// future. Methods of these names move from the `impl` block into the generated `impl Actor`.
pub(crate) const HOOKS: &[(&str, bool)] = &[
    ("create_state", true),
    ("options", false),
    ("queues", false),
    ("run", true),
    ("on_create", true),
    ("create_vars", true),
    ("on_wake", true),
    ("on_sleep", true),
    ("on_destroy", true),
    ("on_state_change", false),
    ("on_before_action_response", false),
    ("can_subscribe", false),
    ("inspect_conn_state", false),
    ("on_before_connect", true),
    ("create_conn_state", true),
    ("on_connect", true),
    ("on_disconnect", true),
    ("on_request", true),
    ("on_websocket", true),
    ("on_websocket_message", true),
    ("on_websocket_close", true),
];

/// `#[actor(name = "..", input = T, conn = Conns<..>)]`, every part optional.
#[derive(Default)]
pub(crate) struct ActorArgs {
    name: Option<String>,
    input: Option<Type>,
    conn: Option<Type>,
}

impl Parse for ActorArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = ActorArgs::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let duplicate = || syn::Error::new_spanned(&key, format!("`{key}` is given twice"));
            if key == "name" {
                if args.name.is_some() {
                    return Err(duplicate());
                }
                args.name = Some(parse_wire_name(&input.parse::<LitStr>()?)?);
            } else if key == "input" {
                if args.input.is_some() {
                    return Err(duplicate());
                }
                args.input = Some(input.parse()?);
            } else if key == "conn" {
                if args.conn.is_some() {
                    return Err(duplicate());
                }
                args.conn = Some(input.parse()?);
            } else {
                return Err(syn::Error::new_spanned(
                    &key,
                    "unknown `#[actor]` argument; expected `name = \"..\"`, `input = Type` or \
                     `conn = Conns<Params, State, Auth>`",
                ));
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// Expands `#[actor]`.
///
/// Errors in single methods (a bad action signature, say) are reported while everything else
/// is still generated, so the rest of the crate sees a complete actor and reports nothing
/// spurious. Errors about the whole block leave the block as it was, minus its `#[action]`
/// attributes.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(attr, item.clone()) {
        Ok((out, None)) => out,
        Ok((out, Some(errors))) => {
            let mut all = errors.to_compile_error();
            all.extend(out);
            all
        }
        Err(err) => {
            let mut out = err.to_compile_error();
            match syn::parse2::<ItemImpl>(item.clone()) {
                Ok(mut imp) => {
                    for it in &mut imp.items {
                        if let ImplItem::Fn(f) = it {
                            f.attrs.retain(|a| !is_action_attr(a));
                        }
                    }
                    out.extend(quote!(#imp));
                }
                Err(_) => out.extend(item),
            }
            out
        }
    }
}

/// The identifier of a plain, non-generic path type (`Counter`, `crate::rooms::ChatRoom`).
fn actor_ident(ty: &Type) -> syn::Result<&Ident> {
    let generic_error = || {
        syn::Error::new_spanned(
            ty,
            "generic actor types are not supported: `#[actor]` needs one concrete type \
             (its registered name and action table are per type); implement the traits by \
             hand, or wrap each instantiation in its own type",
        )
    };
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            if p.path.segments.iter().any(|s| !s.arguments.is_none()) {
                return Err(generic_error());
            }
            p.path
                .segments
                .last()
                .map(|s| &s.ident)
                .ok_or_else(generic_error)
        }
        Type::Group(g) => actor_ident(&g.elem),
        _ => Err(syn::Error::new_spanned(
            ty,
            "`#[actor]` needs a named type, as in `impl Counter { .. }`",
        )),
    }
}

/// Whether a function returns `impl Trait` (a hook written with the trait's exact signature).
fn returns_impl_trait(f: &ImplItemFn) -> bool {
    matches!(&f.sig.output, ReturnType::Type(_, ty) if matches!(**ty, Type::ImplTrait(_)))
}

/// Prepares a hook for the `impl Actor` block: no visibility (not allowed in trait impls), and
/// `async` added to a plain `fn` returning the value where the trait expects a future.
fn prepare_hook(f: &mut ImplItemFn, is_async_hook: bool) -> syn::Result<()> {
    if is_async_hook {
        if f.sig.asyncness.is_none() && !returns_impl_trait(f) {
            f.sig.asyncness = Some(Token![async](f.sig.fn_token.span));
        }
    } else if let Some(asyncness) = f.sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span,
            format!(
                "`{}` is synchronous in `Actor`; remove `async`",
                f.sig.ident
            ),
        ));
    }
    f.vis = Visibility::Inherited;
    Ok(())
}

/// The expansion, and the errors of single methods; `Err` for errors about the whole block.
fn try_expand(
    attr: TokenStream,
    item: TokenStream,
) -> syn::Result<(TokenStream, Option<syn::Error>)> {
    let args: ActorArgs = syn::parse2(attr)?;
    let mut imp: ItemImpl = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`#[actor]` goes on an inherent `impl Type {{ .. }}` block: {e}"),
        )
    })?;
    if let Some((_, path, _)) = &imp.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "`#[actor]` goes on an inherent `impl Type { .. }` block, not on a trait impl",
        ));
    }
    if !imp.generics.params.is_empty() || imp.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &imp.generics,
            "generic actor types are not supported: `#[actor]` needs one concrete type \
             (its registered name and action table are per type)",
        ));
    }
    if let Some(unsafety) = imp.unsafety {
        return Err(syn::Error::new(
            unsafety.span,
            "`#[actor]` impl blocks cannot be `unsafe`",
        ));
    }
    let self_ty = (*imp.self_ty).clone();
    let type_ident = actor_ident(&self_ty)?.clone();

    let mut actions: Vec<ActionFn> = Vec::new();
    let mut hooks: Vec<ImplItemFn> = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut push_error = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let mut kept = Vec::with_capacity(imp.items.len());
    for item in std::mem::take(&mut imp.items) {
        let ImplItem::Fn(mut f) = item else {
            kept.push(item);
            continue;
        };
        let mut action_attrs = Vec::new();
        f.attrs.retain(|a| {
            let is_action = is_action_attr(a);
            if is_action {
                action_attrs.push(a.clone());
            }
            !is_action
        });
        let hook = HOOKS.iter().find(|(name, _)| f.sig.ident == name);
        match (action_attrs.as_slice(), hook) {
            ([], None) => kept.push(ImplItem::Fn(f)),
            ([], Some(&(_, is_async_hook))) => match prepare_hook(&mut f, is_async_hook) {
                Ok(()) => hooks.push(f),
                Err(e) => {
                    push_error(e);
                    kept.push(ImplItem::Fn(f));
                }
            },
            ([attr], None) => {
                match parse_action_attr(attr).and_then(|name| analyze(&f, name)) {
                    Ok(a) => actions.push(a),
                    Err(e) => push_error(e),
                }
                kept.push(ImplItem::Fn(f));
            }
            ([_], Some(_)) => {
                push_error(syn::Error::new_spanned(
                    &f.sig.ident,
                    format!(
                        "`{}` is a lifecycle hook of `Actor`, so it cannot be an action; \
                         rename the method",
                        f.sig.ident
                    ),
                ));
                kept.push(ImplItem::Fn(f));
            }
            ([_, second, ..], _) => {
                push_error(syn::Error::new_spanned(
                    second,
                    "`#[action]` is given twice",
                ));
                kept.push(ImplItem::Fn(f));
            }
        }
    }
    imp.items = kept;
    let actions = unique(actions, &mut push_error);

    let module = snake_ident(&type_ident, "_actions")?;
    let trait_ident = suffixed_ident(&type_ident, "Actions")?;
    let cx = ActorCx {
        self_ty: &self_ty,
        type_name: type_ident.to_string(),
        module: &module,
    };
    let p = private();

    let actor_name = args.name.unwrap_or_else(|| wire_name(&type_ident));
    let input = args.input.unwrap_or_else(|| syn::parse_quote!(()));
    let conn = match args.conn {
        Some(conn) => quote!(#conn),
        None => quote!(#p::core::Conns),
    };

    let has_create_state = hooks.iter().any(|h| h.sig.ident == "create_state");
    let helpers = helpers(
        &type_ident,
        !has_create_state,
        actions.iter().any(|a| !a.args.is_empty()),
    );
    let create_state = if has_create_state {
        None
    } else {
        // Spanned at the type, so a missing `Default` points at the `impl` block.
        let default = quote_spanned!(self_ty.span()=> <Self as #module::__footlights::InitialState>::initial_state());
        Some(quote! {
            async fn create_state(
                _ctx: &#p::core::Ctx<Self>,
                _input: &<Self as #p::protocol::ActorSpec>::Input,
            ) -> ::core::result::Result<Self, #p::protocol::ActionError> {
                ::core::result::Result::Ok(#default)
            }
        })
    };

    let table = if actions.is_empty() {
        format_ident!("_table")
    } else {
        format_ident!("table")
    };
    let registrations = actions.iter().map(|a| a.registration(&cx, &table));
    let structs = actions.iter().map(|a| a.struct_item(&cx));
    let action_impls = actions.iter().map(|a| a.action_impl(&cx));
    let handler_impls = actions.iter().map(|a| a.handler_impl(&cx));
    let client_methods = actions.iter().map(|a| a.client_method(&cx));

    let module_doc = format!(
        "The action messages of `{type_ident}`, one struct per `#[action]` method (generated by \
         `#[actor]`)."
    );
    let trait_doc = format!("Typed calls to the actions of `{type_ident}`.");
    let trait_doc_more = format!(
        "Implemented for everything that can call `{type_ident}`'s actions \
         (`ActionCaller<{type_ident}>`): actor handles and connections. Generated by `#[actor]`."
    );

    let out = quote! {
        #imp

        #[doc = #module_doc]
        #[allow(private_interfaces, unreachable_pub)]
        pub mod #module {
            #[allow(unused_imports)]
            use super::*;

            #(#structs)*

            #helpers
        }

        #(#action_impls)*

        #(#handler_impls)*

        impl #p::protocol::ActorSpec for #self_ty {
            const NAME: &'static str = #actor_name;
            type Input = #input;
        }

        impl #p::core::Actor for #self_ty {
            type Conn = #conn;

            #create_state

            fn actions(#table: &mut #p::core::ActionTable<Self>) {
                #(#registrations)*
            }

            #(#hooks)*
        }

        #[doc = #trait_doc]
        #[doc = ""]
        #[doc = #trait_doc_more]
        #[allow(private_bounds, private_interfaces, unreachable_pub)]
        pub trait #trait_ident: #p::client::ActionCaller<#self_ty> {
            #(#client_methods)*
        }

        impl<__FootlightsCaller> #trait_ident for __FootlightsCaller
        where
            __FootlightsCaller: #p::client::ActionCaller<#self_ty> + ?::core::marker::Sized,
        {
        }
    };
    Ok((out, errors))
}

/// Private helpers of the generated module, in a submodule of their own so their names never
/// shadow the user's types (the module does `use super::*`). Each turns a missing trait into an
/// error that says what to do, pointing at the user's code.
fn helpers(type_ident: &Ident, initial_state: bool, wire_values: bool) -> TokenStream {
    if !initial_state && !wire_values {
        return TokenStream::new();
    }
    let p = private();
    let initial_state = initial_state.then(|| {
        let message = format!(
            "`{type_ident}` needs `Default`, or a `create_state` hook in its `#[actor]` block"
        );
        let note = "the initial state is `Default::default()` unless the block defines \
                    `async fn create_state(ctx: &Ctx<Self>, input: &Self::Input) -> \
                    Result<Self, ActionError>`";
        quote! {
            #[diagnostic::on_unimplemented(message = #message, label = "no `Default`", note = #note)]
            pub trait InitialState: ::core::marker::Sized {
                fn initial_state() -> Self;
            }

            impl<T: ::core::default::Default> InitialState for T {
                fn initial_state() -> Self {
                    <T as ::core::default::Default>::default()
                }
            }
        }
    });
    let wire_values = wire_values.then(|| {
        quote! {
            #[diagnostic::on_unimplemented(
                message = "`{Self}` cannot be an action argument: it is not `Serialize + DeserializeOwned + Send + 'static`",
                label = "not serializable",
                note = "action arguments travel as a positional list of values: derive `Serialize` and `Deserialize` for this type"
            )]
            pub trait WireValue: ::core::marker::Sized {
                fn encode(&self) -> ::core::result::Result<#p::protocol::Value, #p::protocol::ActionError>;
                fn decode(
                    value: ::core::option::Option<#p::protocol::Value>,
                    what: &str,
                    ty: &str,
                ) -> ::core::result::Result<Self, #p::protocol::ActionError>;
            }

            impl<T> WireValue for T
            where
                T: #p::serde::Serialize
                    + #p::serde::de::DeserializeOwned
                    + ::core::marker::Send
                    + 'static,
            {
                fn encode(&self) -> ::core::result::Result<#p::protocol::Value, #p::protocol::ActionError> {
                    ::core::result::Result::Ok(#p::protocol::to_value_exact(self)?)
                }

                fn decode(
                    value: ::core::option::Option<#p::protocol::Value>,
                    what: &str,
                    ty: &str,
                ) -> ::core::result::Result<Self, #p::protocol::ActionError> {
                    // A missing trailing argument reads as null, so `Option` parameters may be
                    // left out; any other type says which argument is missing.
                    let missing = ::core::option::Option::is_none(&value);
                    let value = ::core::option::Option::unwrap_or(value, #p::protocol::Value::Null);
                    #p::protocol::from_value_exact(value).map_err(|e| {
                        #p::protocol::ActionError::invalid_request(if missing {
                            ::std::format!("missing {what} ({ty})")
                        } else {
                            ::std::format!("{what} ({ty}): {e}")
                        })
                    })
                }
            }
        }
    });
    quote! {
        #[doc(hidden)]
        pub(super) mod __footlights {
            #initial_state
            #wire_values
        }
    }
}

/// Methods that actor handles and connections already have. A client method of the same name
/// would be shadowed by them, so an action may not take one of these Rust names.
const CLIENT_METHODS: &[&str] = &[
    "action",
    "call",
    "client",
    "connect",
    "connect_with",
    "dispose",
    "enqueue",
    "enqueue_and_wait",
    "errors",
    "events",
    "fetch",
    "id",
    "on_raw",
    "once",
    "resolve",
    "status",
    "target",
    "websocket",
    "with_params",
];

/// Two actions may share neither a wire name nor a struct name, and no action may take the
/// name of a handle or connection method: offending ones are reported and left out.
fn unique(actions: Vec<ActionFn>, push_error: &mut impl FnMut(syn::Error)) -> Vec<ActionFn> {
    let mut wire: HashMap<String, Ident> = HashMap::new();
    let mut structs: HashMap<String, Ident> = HashMap::new();
    let mut kept = Vec::with_capacity(actions.len());
    for a in actions {
        if CLIENT_METHODS.contains(&a.method.to_string().as_str()) {
            push_error(syn::Error::new(
                a.method.span(),
                format!(
                    "an action may not be named `{}`: handles and connections already have a \
                     `{}` method, which would hide it; rename the method (the wire name can stay \
                     with `#[action(name = \"..\")]`)",
                    a.method, a.method
                ),
            ));
        } else if let Some(first) = wire.get(&a.wire_name) {
            push_error(syn::Error::new(
                a.method.span(),
                format!(
                    "the action name `{}` is already taken by `{first}`; choose another with \
                     `#[action(name = \"..\")]`",
                    a.wire_name
                ),
            ));
        } else if let Some(first) = structs.get(&a.struct_ident.to_string()) {
            push_error(syn::Error::new(
                a.method.span(),
                format!(
                    "`{}` and `{first}` would both generate the struct `{}`; rename one",
                    a.method, a.struct_ident
                ),
            ));
        } else {
            wire.insert(a.wire_name.clone(), a.method.clone());
            structs.insert(a.struct_ident.to_string(), a.method.clone());
            kept.push(a);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;

    fn expand_ok(attr: TokenStream, item: TokenStream) -> syn::File {
        match try_expand(attr, item).unwrap() {
            (out, None) => syn::parse2(out).unwrap(),
            (_, Some(e)) => panic!("unexpected error: {e}"),
        }
    }

    /// The errors, whether about the whole block or about single methods.
    fn errors_of(attr: TokenStream, item: TokenStream) -> syn::Error {
        match try_expand(attr, item) {
            Ok((_, Some(e))) | Err(e) => e,
            Ok((out, None)) => panic!("expected an error, got {out}"),
        }
    }

    fn error_of(attr: TokenStream, item: TokenStream) -> String {
        errors_of(attr, item).to_string()
    }

    fn counter() -> TokenStream {
        quote! {
            impl Counter {
                #[action]
                fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
                    self.count += amount;
                    self.count
                }

                #[action]
                pub fn get_count(&self) -> i64 {
                    self.count
                }

                async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
                    Ok(())
                }

                fn helper(&self) {}
            }
        }
    }

    /// The impl whose trait path ends in `name`, rendered as a string.
    fn trait_impl(file: &syn::File, name: &str) -> String {
        file.items
            .iter()
            .find_map(|item| match item {
                syn::Item::Impl(imp)
                    if imp
                        .trait_
                        .as_ref()
                        .and_then(|(_, p, _)| p.segments.last())
                        .is_some_and(|s| s.ident == name) =>
                {
                    Some(imp.to_token_stream().to_string())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no impl of {name}"))
    }

    #[test]
    fn counter_expands_to_every_piece() {
        let file = expand_ok(TokenStream::new(), counter());
        let inherent = file
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Impl(imp) if imp.trait_.is_none() && imp.generics.params.is_empty() => {
                    Some(imp)
                }
                _ => None,
            })
            .unwrap();
        let methods: Vec<String> = inherent
            .items
            .iter()
            .filter_map(|i| match i {
                ImplItem::Fn(f) => {
                    assert!(f.attrs.iter().all(|a| !is_action_attr(a)));
                    Some(f.sig.ident.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(methods, ["increment", "get_count", "helper"]);

        let module = file
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Mod(m) => Some(m),
                _ => None,
            })
            .unwrap();
        assert_eq!(module.ident, "counter_actions");
        let module = module.to_token_stream().to_string();
        // Structs are as visible as their methods.
        assert!(
            module.contains("pub (super) struct Increment { # [doc"),
            "{module}"
        );
        assert!(module.contains("pub (super) amount : i64"), "{module}");
        assert!(module.contains("pub struct GetCount { }"), "{module}");

        let spec = trait_impl(&file, "ActorSpec");
        assert!(spec.contains("\"counter\""), "{spec}");
        assert!(spec.contains("type Input = ()"), "{spec}");

        let actor = trait_impl(&file, "Actor");
        assert!(actor.contains("async fn on_wake"), "{actor}");
        assert!(actor.contains("fn create_state"), "{actor}");
        assert!(
            actor.contains("table . write :: < counter_actions :: Increment > ()"),
            "{actor}"
        );
        assert!(
            actor.contains("table . read :: < counter_actions :: GetCount > ()"),
            "{actor}"
        );

        let handler = trait_impl(&file, "Handler");
        assert!(
            handler.contains("< Counter > :: increment (self , ctx , msg . amount)"),
            "{handler}"
        );
        let read = trait_impl(&file, "ReadHandler");
        assert!(read.contains("< Counter > :: get_count (self)"), "{read}");

        let client = file
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Trait(t) => Some(t),
                _ => None,
            })
            .unwrap();
        assert_eq!(client.ident, "CounterActions");
        let client = client.to_token_stream().to_string();
        assert!(
            client.contains("Typed calls to the actions of `Counter`."),
            "{client}"
        );
        assert!(
            client.contains("fn increment (& self , amount : i64)"),
            "{client}"
        );
        assert!(client.contains("fn get_count (& self ,)"), "{client}");
    }

    #[test]
    fn arguments_set_name_input_and_conn() {
        let file = expand_ok(
            quote!(name = "room", input = RoomConfig, conn = Conns<JoinParams, Member>),
            quote!(impl ChatRoom {}),
        );
        let spec = trait_impl(&file, "ActorSpec");
        assert!(
            spec.contains("\"room\"") && spec.contains("type Input = RoomConfig"),
            "{spec}"
        );
        let actor = trait_impl(&file, "Actor");
        assert!(
            actor.contains("type Conn = Conns < JoinParams , Member >"),
            "{actor}"
        );
        assert!(actor.contains("_table"), "{actor}");

        let file = expand_ok(TokenStream::new(), quote!(impl ChatRoom {}));
        assert!(trait_impl(&file, "ActorSpec").contains("\"chatRoom\""));
        assert!(
            file.to_token_stream()
                .to_string()
                .contains("mod chat_room_actions")
        );
    }

    #[test]
    fn hooks_move_into_the_actor_impl() {
        let file = expand_ok(
            TokenStream::new(),
            quote! {
                impl Counter {
                    pub fn create_state(ctx: &Ctx<Self>, input: &()) -> Result<Self, ActionError> {
                        Ok(Counter { count: 1 })
                    }
                    fn options() -> ActorOptions { ActorOptions::default() }
                    fn on_sleep(&mut self, ctx: &Ctx<Self>) -> impl Future<Output = ()> + Send {
                        async {}
                    }
                }
            },
        );
        let actor = trait_impl(&file, "Actor");
        // A plain `fn` returning the value becomes `async`; no default `create_state` is added.
        assert!(actor.contains("async fn create_state"), "{actor}");
        assert_eq!(actor.matches("fn create_state").count(), 1, "{actor}");
        assert!(!actor.contains("pub fn"), "{actor}");
        assert!(!actor.contains("async fn options"), "{actor}");
        assert!(!actor.contains("async fn on_sleep"), "{actor}");
    }

    #[test]
    fn deferred_actions_use_the_deferred_handler() {
        let file = expand_ok(
            TokenStream::new(),
            quote! {
                impl Counter {
                    #[action(name = "later")]
                    async fn wait(&mut self) -> Result<Deferred<i64>, MyError> { todo() }
                }
            },
        );
        let handler = trait_impl(&file, "DeferredHandler");
        assert!(handler.contains(". await"), "{handler}");
        assert!(
            handler.contains(
                "Into :: < :: footlights :: __private :: protocol :: ActionError > :: into (error)"
            ),
            "{handler}"
        );
        assert!(trait_impl(&file, "Action").contains("type Output = i64"));
        assert!(trait_impl(&file, "Action").contains("\"later\""));
        assert!(trait_impl(&file, "Actor").contains("table . deferred ::"));
    }

    #[test]
    fn rejects_what_it_cannot_support() {
        let none = TokenStream::new;
        let cases: [(TokenStream, TokenStream, &str); 10] = [
            (
                none(),
                quote!(
                    impl<T> Wrapper<T> {}
                ),
                "generic actor types are not supported",
            ),
            (
                none(),
                quote!(impl Wrapper<u8> {}),
                "generic actor types are not supported",
            ),
            (
                none(),
                quote!(impl Trait for Counter {}),
                "not on a trait impl",
            ),
            (
                none(),
                quote!(
                    struct Counter;
                ),
                "inherent `impl Type",
            ),
            (
                quote!(nmae = "x"),
                quote!(impl Counter {}),
                "unknown `#[actor]` argument",
            ),
            (
                quote!(name = "a", name = "b"),
                quote!(impl Counter {}),
                "given twice",
            ),
            (
                none(),
                quote!(impl Counter { #[action] fn on_wake(&mut self) {} }),
                "lifecycle hook",
            ),
            (
                none(),
                quote!(impl Counter { async fn on_state_change(&mut self, ctx: &Ctx<Self>) {} }),
                "synchronous",
            ),
            (
                none(),
                quote! {
                    impl Counter {
                        #[action] fn get_count(&self) -> i64 { 0 }
                        #[action(name = "getCount")] fn count(&self) -> i64 { 0 }
                    }
                },
                "already taken",
            ),
            (
                none(),
                quote!(impl Counter { #[action] #[action] fn f(&self) {} }),
                "given twice",
            ),
        ];
        for (attr, item, expected) in cases {
            let err = error_of(attr, item.clone());
            assert!(err.contains(expected), "{item}: {err}");
        }
    }

    #[test]
    fn every_bad_action_is_reported_and_the_rest_still_expands() {
        let (out, errors) = try_expand(
            TokenStream::new(),
            quote! {
                impl Counter {
                    #[action] fn a(x: i64) {}
                    #[action] fn b(&self) -> Deferred<i64> { x }
                    #[action] fn c(&self) -> i64 { 1 }
                    #[action(name = "c")] fn d(&self) -> i64 { 1 }
                }
            },
        )
        .unwrap();
        assert_eq!(errors.unwrap().into_iter().count(), 3);
        let file: syn::File = syn::parse2(out).unwrap();
        let actor = trait_impl(&file, "Actor");
        assert!(actor.contains("counter_actions :: C >"), "{actor}");
        assert!(!actor.contains("counter_actions :: D >"), "{actor}");
        assert!(!actor.contains("counter_actions :: A >"), "{actor}");
    }

    #[test]
    fn whole_block_errors_keep_the_block_without_action_attributes() {
        let out = expand(
            quote!(nmae = "x"),
            quote!(impl Counter { #[action] fn a(&self) {} }),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.ends_with("impl Counter { fn a (& self) { } }"), "{out}");
    }
}
