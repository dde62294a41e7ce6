//! Schemas: what attributes and nested blocks a provider, resource or data source accepts.

use std::collections::BTreeMap;

use flotilla_lang::Type;

/// Everything one provider offers.
#[derive(Debug, Clone, Default)]
pub struct ProviderSchema {
    /// The provider block's own arguments.
    pub provider: BlockSchema,
    /// Managed resource types by name.
    pub resources: BTreeMap<String, ResourceSchema>,
    /// Data source types by name.
    pub data_sources: BTreeMap<String, ResourceSchema>,
}

/// One resource or data source type.
#[derive(Debug, Clone, Default)]
pub struct ResourceSchema {
    /// What it does, for docs and `--help`.
    pub description: String,
    /// Its arguments and attributes.
    pub block: BlockSchema,
    /// Replacements create the new object before destroying the old one, as if the resource
    /// said `lifecycle { create_before_destroy = true }`: for kinds whose replacement gets a
    /// new name, so the referrers can move over before the old object goes.
    pub create_before_destroy: bool,
}

/// The attributes and nested blocks of a body.
#[derive(Debug, Clone, Default)]
pub struct BlockSchema {
    /// Attributes by name.
    pub attributes: BTreeMap<String, AttributeSchema>,
    /// Nested block types by name.
    pub blocks: BTreeMap<String, NestedBlockSchema>,
}

impl BlockSchema {
    /// Adds an attribute (builder style).
    pub fn attr(mut self, name: &str, a: AttributeSchema) -> BlockSchema {
        self.attributes.insert(name.to_string(), a);
        self
    }

    /// Adds a nested block type (builder style).
    pub fn block(mut self, name: &str, b: NestedBlockSchema) -> BlockSchema {
        self.blocks.insert(name.to_string(), b);
        self
    }
}

/// One attribute.
#[derive(Debug, Clone)]
pub struct AttributeSchema {
    /// Its type.
    pub ty: Type,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// Set by the provider (alone, or as a default when optional and unset).
    pub computed: bool,
    /// Never shown.
    pub sensitive: bool,
    /// A change forces replacement.
    pub force_new: bool,
    /// What it means.
    pub description: String,
}

impl AttributeSchema {
    fn base(ty: Type, description: &str) -> AttributeSchema {
        AttributeSchema {
            ty,
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            force_new: false,
            description: description.to_string(),
        }
    }

    /// A required argument.
    pub fn required(ty: Type, description: &str) -> AttributeSchema {
        AttributeSchema {
            required: true,
            ..Self::base(ty, description)
        }
    }

    /// An optional argument.
    pub fn optional(ty: Type, description: &str) -> AttributeSchema {
        AttributeSchema {
            optional: true,
            ..Self::base(ty, description)
        }
    }

    /// An attribute only the provider sets.
    pub fn computed(ty: Type, description: &str) -> AttributeSchema {
        AttributeSchema {
            computed: true,
            ..Self::base(ty, description)
        }
    }

    /// Marks it optional and computed (the provider fills a default).
    pub fn with_default(mut self) -> AttributeSchema {
        self.computed = true;
        self
    }

    /// Marks it sensitive.
    pub fn sensitive(mut self) -> AttributeSchema {
        self.sensitive = true;
        self
    }

    /// Marks it as forcing replacement when changed.
    pub fn force_new(mut self) -> AttributeSchema {
        self.force_new = true;
        self
    }
}

/// How many instances of a nested block are allowed and how they appear in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; the value is an object (or null).
    Single,
    /// Any number; the value is a list of objects.
    List,
}

/// A nested block type.
#[derive(Debug, Clone)]
pub struct NestedBlockSchema {
    /// Single or list.
    pub nesting: Nesting,
    /// Its contents.
    pub block: BlockSchema,
}
