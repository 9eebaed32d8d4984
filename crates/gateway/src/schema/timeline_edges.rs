//! The `edges` of a timeline page, resolved in one pass when the selection allows it.
//!
//! async-graphql resolves an object by building a boxed future for each selected field, and
//! a list by joining one future per item: a page of 50 entries with seven fields selected is
//! ~400 futures and 100 maps, for values that are already in memory. When the selection
//! under `edges` is plain — fields only, no fragments, no directives, no `__typename`, each
//! response key once — [`TimelineEdges`] writes the values straight from the entries. Any
//! other selection (or an entry whose position is not known yet) goes the ordinary way. The
//! schema is the same either way: the type registers as `[TimelineEdge!]!`, and the values
//! are made by the same conversions the `TimelineEntry` resolvers use.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::enum_value;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ScalarType, ServerResult, Value,
};

use crate::schema::customer::TimelineEdge;
use crate::schema::types::{Channel, EntryKind};
use crate::time::DateTime;

/// The edges of one timeline page.
pub struct TimelineEdges(pub Vec<TimelineEdge>);

/// A field of `TimelineEntry` the single pass can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryField {
    Position,
    At,
    Kind,
    Channel,
    Actor,
    Summary,
    CaseId,
    InteractionId,
    SurveyId,
    FollowUpId,
    AgentId,
    OriginCustomerId,
}

impl EntryField {
    fn named(name: &str) -> Option<EntryField> {
        Some(match name {
            "position" => EntryField::Position,
            "at" => EntryField::At,
            "kind" => EntryField::Kind,
            "channel" => EntryField::Channel,
            "actor" => EntryField::Actor,
            "summary" => EntryField::Summary,
            "caseId" => EntryField::CaseId,
            "interactionId" => EntryField::InteractionId,
            "surveyId" => EntryField::SurveyId,
            "followUpId" => EntryField::FollowUpId,
            "agentId" => EntryField::AgentId,
            "originCustomerId" => EntryField::OriginCustomerId,
            _ => return None,
        })
    }
}

/// A field of `TimelineEdge`.
#[derive(Debug, PartialEq)]
enum EdgeField {
    Cursor,
    /// The entry's fields, and an object of their response keys to fill in.
    Node(Vec<(Name, EntryField)>, Template),
}

/// What to write for each edge, in response order.
#[derive(Debug, PartialEq)]
struct Plan {
    fields: Vec<(Name, EdgeField)>,
    /// An object of the edge's response keys to fill in.
    template: Template,
    needs_position: bool,
}

/// An object with a plan's response keys, in response order, each holding null. Every edge
/// (and every node) starts as a copy of it and has its values replaced in place: an object
/// built key by key hashes every key with SipHash, which was ~3 % of the server's CPU on
/// timeline pages (50 edges of 2 keys, 50 nodes of 5), and a copy hashes nothing.
type Template = IndexMap<Name, Value>;

fn template<'a>(keys: impl Iterator<Item = &'a Name>) -> Template {
    keys.map(|key| (key.clone(), Value::Null)).collect()
}

/// The plan for `selection` (the selection under `edges`), if it is plain enough.
fn plan(selection: &SelectionSet) -> Option<Plan> {
    let mut fields: Vec<(Name, EdgeField)> = Vec::with_capacity(selection.items.len());
    let mut needs_position = false;
    for item in &selection.items {
        let field = plain_field(&item.node)?;
        let key = field.response_key().node.clone();
        if fields.iter().any(|(k, _)| *k == key) {
            return None;
        }
        let edge = match field.name.node.as_str() {
            "cursor" if field.selection_set.node.items.is_empty() => EdgeField::Cursor,
            "node" => {
                let mut node: Vec<(Name, EntryField)> = Vec::new();
                for item in &field.selection_set.node.items {
                    let field = plain_field(&item.node)?;
                    let key = field.response_key().node.clone();
                    if !field.selection_set.node.items.is_empty()
                        || node.iter().any(|(k, _)| *k == key)
                    {
                        return None;
                    }
                    let entry = EntryField::named(field.name.node.as_str())?;
                    needs_position |= entry == EntryField::Position;
                    node.push((key, entry));
                }
                let keys = template(node.iter().map(|(key, _)| key));
                EdgeField::Node(node, keys)
            }
            _ => return None,
        };
        fields.push((key, edge));
    }
    Some(Plan {
        template: template(fields.iter().map(|(key, _)| key)),
        fields,
        needs_position,
    })
}

/// `selection` as a field without directives or arguments, if it is one.
fn plain_field(selection: &Selection) -> Option<&async_graphql::parser::types::Field> {
    match selection {
        Selection::Field(field)
            if field.node.directives.is_empty() && field.node.arguments.is_empty() =>
        {
            Some(&field.node)
        }
        _ => None,
    }
}

fn id(value: Option<impl ToString>) -> Value {
    value.map_or(Value::Null, |v| Value::String(v.to_string()))
}

impl Plan {
    fn write(&self, edge: &TimelineEdge) -> Value {
        let mut out = self.template.clone();
        for ((_, field), slot) in self.fields.iter().zip(out.values_mut()) {
            *slot = match field {
                EdgeField::Cursor => Value::String(edge.cursor.clone()),
                EdgeField::Node(fields, template) => {
                    let entry = &edge.node.0;
                    let mut node = template.clone();
                    for ((_, field), slot) in fields.iter().zip(node.values_mut()) {
                        *slot = match field {
                            EntryField::Position => {
                                edge.node.1.map_or(Value::Null, |p| Value::Number(p.into()))
                            }
                            EntryField::At => DateTime(entry.at).to_value(),
                            EntryField::Kind => enum_value(EntryKind::from(entry.kind)),
                            EntryField::Channel => entry
                                .channel
                                .map_or(Value::Null, |c| enum_value(Channel::from(c))),
                            EntryField::Actor => Value::String(entry.actor.clone()),
                            EntryField::Summary => Value::String(entry.summary.clone()),
                            EntryField::CaseId => id(entry.case_id),
                            EntryField::InteractionId => id(entry.interaction_id),
                            EntryField::SurveyId => id(entry.survey_id),
                            EntryField::FollowUpId => id(entry.follow_up_id),
                            EntryField::AgentId => id(entry.agent_id),
                            EntryField::OriginCustomerId => id(entry.origin_customer),
                        };
                    }
                    Value::Object(node)
                }
            };
        }
        Value::Object(out)
    }
}

impl OutputType for TimelineEdges {
    fn type_name() -> Cow<'static, str> {
        <Vec<TimelineEdge> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<TimelineEdge> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<TimelineEdge> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<async_graphql::parser::types::Field>,
    ) -> ServerResult<Value> {
        if let Some(plan) = plan(&ctx.item.node) {
            if !plan.needs_position || self.0.iter().all(|e| e.node.1.is_some()) {
                return Ok(Value::List(self.0.iter().map(|e| plan.write(e)).collect()));
            }
        }
        OutputType::resolve(&self.0, ctx, field).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};

    /// The selection under `edges` in `query`.
    fn edges_of(doc: &ExecutableDocument) -> &SelectionSet {
        let DocumentOperations::Single(op) = &doc.operations else {
            panic!("one operation");
        };
        fn find(set: &SelectionSet) -> Option<&SelectionSet> {
            set.items.iter().find_map(|item| match &item.node {
                Selection::Field(f) if f.node.name.node == "edges" => {
                    Some(&f.node.selection_set.node)
                }
                Selection::Field(f) => find(&f.node.selection_set.node),
                _ => None,
            })
        }
        find(&op.node.selection_set.node).expect("an edges field")
    }

    fn plan_of(query: &str) -> Option<Plan> {
        let doc = parse_query(query).unwrap();
        plan(edges_of(&doc))
    }

    #[test]
    fn a_plain_selection_is_written_in_one_pass_in_response_order() {
        let plan = plan_of(
            "{ c { timeline { edges { node { kind when: at summary position } cursor } } } }",
        )
        .expect("plain");
        assert!(plan.needs_position);
        assert_eq!(plan.fields.len(), 2);
        assert_eq!(plan.fields[0].0.as_str(), "node");
        assert_eq!(plan.fields[1], (Name::new("cursor"), EdgeField::Cursor));
        let EdgeField::Node(node, template) = &plan.fields[0].1 else {
            panic!("node first");
        };
        let template_keys: Vec<&str> = template.keys().map(Name::as_str).collect();
        assert_eq!(template_keys, ["kind", "when", "summary", "position"]);
        let edge_keys: Vec<&str> = plan.template.keys().map(Name::as_str).collect();
        assert_eq!(edge_keys, ["node", "cursor"]);
        let keys: Vec<(&str, EntryField)> = node.iter().map(|(k, f)| (k.as_str(), *f)).collect();
        assert_eq!(
            keys,
            [
                ("kind", EntryField::Kind),
                ("when", EntryField::At),
                ("summary", EntryField::Summary),
                ("position", EntryField::Position)
            ]
        );
        let plan = plan_of("{ c { timeline { edges { cursor } } } }").expect("plain");
        assert!(!plan.needs_position);
    }

    #[test]
    fn anything_but_plain_fields_goes_the_ordinary_way() {
        for query in [
            "{ c { timeline { edges { ...E } } } } fragment E on TimelineEdge { cursor }",
            "{ c { timeline { edges { node { ...N } } } } } fragment N on TimelineEntry { at }",
            "{ c { timeline { edges { ... on TimelineEdge { cursor } } } } }",
            "{ c { timeline { edges { cursor @include(if: true) } } } }",
            "{ c { timeline { edges { node { at @skip(if: false) } } } } }",
            "{ c { timeline { edges { __typename cursor } } } }",
            "{ c { timeline { edges { node { __typename at } } } } }",
            "{ c { timeline { edges { cursor cursor } } } }",
            "{ c { timeline { edges { node { at } node { kind } } } } }",
            "{ c { timeline { edges { node { at at } } } } }",
            "{ c { timeline { edges { node { notAField } } } } }",
        ] {
            assert_eq!(plan_of(query), None, "{query}");
        }
    }
}
