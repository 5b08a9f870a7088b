//! The SWF request model, compiled once from AWS's service model
//! (`model/swf-2012-01-25.service-2.json`, embedded at build time) into a table of shapes:
//! for every operation, the input structure, and for every shape its members, types, lengths,
//! enums and ranges. Nothing here is hand-copied from the model, so nothing can drift from it.
//!
//! Only what a request can carry is compiled: the input shapes and everything they reach.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::Operation;

/// AWS's model of Amazon SWF, API version 2012-01-25.
const MODEL_JSON: &str = include_str!("../../model/swf-2012-01-25.service-2.json");

/// An index into [`Model::shapes`].
pub type ShapeId = usize;

/// One input shape.
#[derive(Debug)]
pub struct Shape {
    /// The model's name for it (`TaskList`, `DomainName`), for messages.
    pub name: String,
    pub kind: Kind,
}

/// What a shape is, with the model's constraints.
#[derive(Debug)]
pub enum Kind {
    Structure {
        /// Few enough that a scan beats a hash.
        members: Vec<Member>,
    },
    List {
        member: ShapeId,
        min: Option<u64>,
        max: Option<u64>,
    },
    String {
        min: Option<u64>,
        max: Option<u64>,
        /// Allowed values, when the model lists them.
        values: Option<Vec<String>>,
        /// `TaskToken`: held to no length here, since the client sends the sealed token,
        /// longer than the upstream's; its seal is its check.
        sealed: bool,
    },
    /// `integer` and `long`.
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    /// Epoch seconds, as the JSON 1.0 protocol sends timestamps.
    Timestamp,
}

/// A member of a structure.
#[derive(Debug)]
pub struct Member {
    /// The exact, case-sensitive name on the wire.
    pub name: String,
    pub shape: ShapeId,
    pub required: bool,
}

/// The compiled model.
#[derive(Debug)]
pub struct Model {
    pub shapes: Vec<Shape>,
    /// The input shape of each operation, by `Operation::index`.
    inputs: Vec<ShapeId>,
}

impl Model {
    /// The compiled model of the embedded service description, built on first use.
    pub fn get() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            // The embedded model is part of the build; a unit test compiles it.
            Model::compile(MODEL_JSON).unwrap_or_else(|e| panic!("the embedded SWF model: {e}"))
        })
    }

    /// The input shape of `op`.
    pub fn input(&self, op: Operation) -> ShapeId {
        self.inputs[op.index()]
    }

    pub fn shape(&self, id: ShapeId) -> &Shape {
        &self.shapes[id]
    }

    /// Compiles a service description.
    pub fn compile(json: &str) -> Result<Model, String> {
        let doc: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let shapes = doc["shapes"].as_object().ok_or("no `shapes`")?;
        let operations = doc["operations"].as_object().ok_or("no `operations`")?;
        let mut compiler = Compiler {
            source: shapes,
            ids: HashMap::new(),
            shapes: Vec::new(),
        };
        let mut inputs = Vec::with_capacity(Operation::ALL.len());
        for op in Operation::ALL {
            let input = operations
                .get(op.name())
                .and_then(|o| o["input"]["shape"].as_str())
                .ok_or_else(|| format!("no input shape for `{}`", op.name()))?;
            inputs.push(compiler.shape(input)?);
        }
        Ok(Model {
            shapes: compiler.shapes,
            inputs,
        })
    }
}

struct Compiler<'a> {
    source: &'a serde_json::Map<String, Value>,
    ids: HashMap<String, ShapeId>,
    shapes: Vec<Shape>,
}

impl Compiler<'_> {
    /// The id of shape `name`, compiling it (and what it reaches) the first time.
    fn shape(&mut self, name: &str) -> Result<ShapeId, String> {
        if let Some(&id) = self.ids.get(name) {
            return Ok(id);
        }
        let spec = self
            .source
            .get(name)
            .ok_or_else(|| format!("unknown shape `{name}`"))?;
        let id = self.shapes.len();
        self.ids.insert(name.to_owned(), id);
        // A placeholder keeps the id while members are compiled (the model has no cycles,
        // but a placeholder makes one harmless).
        self.shapes.push(Shape {
            name: name.to_owned(),
            kind: Kind::Boolean,
        });
        let uint = |key: &str| spec[key].as_u64();
        let int = |key: &str| spec[key].as_i64();
        let kind = match spec["type"].as_str().unwrap_or_default() {
            "structure" => {
                let required: Vec<&str> = spec["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut members = Vec::new();
                for (member, m) in spec["members"].as_object().ok_or("no members")? {
                    let target = m["shape"].as_str().ok_or("member without a shape")?;
                    members.push(Member {
                        name: member.clone(),
                        shape: self.shape(target)?,
                        required: required.contains(&member.as_str()),
                    });
                }
                Kind::Structure { members }
            }
            "list" => Kind::List {
                member: self.shape(
                    spec["member"]["shape"]
                        .as_str()
                        .ok_or("list without a member")?,
                )?,
                min: uint("min"),
                max: uint("max"),
            },
            "string" => Kind::String {
                min: uint("min"),
                max: uint("max"),
                values: spec["enum"].as_array().map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                }),
                sealed: name == "TaskToken",
            },
            "integer" | "long" => Kind::Integer {
                min: int("min"),
                max: int("max"),
            },
            "boolean" => Kind::Boolean,
            "timestamp" => Kind::Timestamp,
            other => return Err(format!("shape `{name}` has unsupported type `{other}`")),
        };
        self.shapes[id].kind = kind;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_compiles() {
        let model = Model::get();
        let poll = model.shape(model.input(Operation::PollForActivityTask));
        assert_eq!(poll.name, "PollForActivityTaskInput");
        let Kind::Structure { members } = &poll.kind else {
            panic!("not a structure")
        };
        let member = |name: &str| members.iter().find(|m| m.name == name).unwrap();
        let mut names: Vec<(&str, bool)> = members
            .iter()
            .map(|m| (m.name.as_str(), m.required))
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [("domain", true), ("identity", false), ("taskList", true)]
        );
        let task_list = model.shape(member("taskList").shape);
        assert!(
            matches!(&task_list.kind, Kind::Structure { members } if members[0].name == "name" && members[0].required)
        );
        let domain = model.shape(member("domain").shape);
        assert!(matches!(
            domain.kind,
            Kind::String {
                min: Some(1),
                max: Some(256),
                values: None,
                sealed: false,
            }
        ));
    }

    #[test]
    fn a_broken_model_is_an_error() {
        assert!(Model::compile("{}").is_err());
        assert!(Model::compile(r#"{"shapes":{},"operations":{}}"#).is_err());
    }
}
