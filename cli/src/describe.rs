//! `describe`: a service, method, message or enum, as grpcurl prints it (`X is a service:`
//! then proto source-like text).

use prost_reflect::{
    Cardinality, DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ServiceDescriptor,
};

/// The text for `symbol` in `pool`, or `None` when the pool does not define it.
pub(crate) fn describe(pool: &DescriptorPool, symbol: &str) -> Option<String> {
    let symbol = symbol.trim_start_matches('.');
    if let Some(service) = pool.get_service_by_name(symbol) {
        return Some(format!(
            "{symbol} is a service:\n{}",
            service_text(&service)
        ));
    }
    if let Some(method) = find_method(pool, symbol) {
        return Some(format!("{symbol} is a method:\n{}", method_text(&method)));
    }
    if let Some(message) = pool.get_message_by_name(symbol) {
        return Some(format!(
            "{symbol} is a message:\n{}",
            message_text(&message, "")
        ));
    }
    if let Some(e) = pool.get_enum_by_name(symbol) {
        return Some(format!("{symbol} is an enum:\n{}", enum_text(&e, "")));
    }
    None
}

/// The method `pkg.Service.Method` or `pkg.Service/Method`.
pub(crate) fn find_method(pool: &DescriptorPool, name: &str) -> Option<MethodDescriptor> {
    let name = name.trim_start_matches('.').trim_start_matches('/');
    let (service, method) = name.rsplit_once('/').or_else(|| name.rsplit_once('.'))?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

fn service_text(service: &ServiceDescriptor) -> String {
    let mut text = format!("service {} {{\n", service.name());
    for method in service.methods() {
        text.push_str(&format!("  {}\n", method_text(&method)));
    }
    text.push('}');
    text
}

/// `rpc Name ( .pkg.In ) returns ( stream .pkg.Out );`
pub(crate) fn method_text(method: &MethodDescriptor) -> String {
    let stream = |yes: bool| if yes { "stream " } else { "" };
    format!(
        "rpc {} ( {}.{} ) returns ( {}.{} );",
        method.name(),
        stream(method.is_client_streaming()),
        method.input().full_name(),
        stream(method.is_server_streaming()),
        method.output().full_name()
    )
}

fn message_text(message: &MessageDescriptor, indent: &str) -> String {
    let mut text = format!("{indent}message {} {{\n", message.name());
    let inner = format!("{indent}  ");
    for nested in message.child_messages().filter(|m| !m.is_map_entry()) {
        text.push_str(&message_text(&nested, &inner));
        text.push('\n');
    }
    for e in message.child_enums() {
        text.push_str(&enum_text(&e, &inner));
        text.push('\n');
    }
    let mut oneof_seen = Vec::new();
    for field in message.fields() {
        match field.containing_oneof().filter(|o| !o.is_synthetic()) {
            Some(oneof) => {
                if oneof_seen.contains(&oneof.name().to_owned()) {
                    continue;
                }
                oneof_seen.push(oneof.name().to_owned());
                text.push_str(&format!("{inner}oneof {} {{\n", oneof.name()));
                for f in oneof.fields() {
                    text.push_str(&format!("{inner}  {}\n", field_text(&f)));
                }
                text.push_str(&format!("{inner}}}\n"));
            }
            None => text.push_str(&format!("{inner}{}\n", field_text(&field))),
        }
    }
    text.push_str(&format!("{indent}}}"));
    text
}

fn field_text(field: &FieldDescriptor) -> String {
    let label = if field.is_map() {
        ""
    } else if field.cardinality() == Cardinality::Repeated {
        "repeated "
    } else if field.field_descriptor_proto().proto3_optional() {
        "optional "
    } else {
        ""
    };
    format!(
        "{label}{} {} = {};",
        type_name(field),
        field.name(),
        field.number()
    )
}

fn type_name(field: &FieldDescriptor) -> String {
    if field.is_map() {
        if let Kind::Message(entry) = field.kind() {
            let key = entry.map_entry_key_field();
            let value = entry.map_entry_value_field();
            return format!("map<{}, {}>", type_name(&key), type_name(&value));
        }
    }
    match field.kind() {
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
    }
}

fn enum_text(e: &EnumDescriptor, indent: &str) -> String {
    let mut text = format!("{indent}enum {} {{\n", e.name());
    for value in e.values() {
        text.push_str(&format!(
            "{indent}  {} = {};\n",
            value.name(),
            value.number()
        ));
    }
    text.push_str(&format!("{indent}}}"));
    text
}
