# A first configuration: no cluster needed, only the built-in provider.
# Run it with:  flotilla -chdir=examples/basics apply -auto-approve

flotilla {
  required_version = ">= 0.1"
}

variable "fleet" {
  type        = string
  default     = "demo"
  description = "Name of the fleet; shows up in every generated name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*$", var.fleet))
    error_message = "fleet must be lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "regions" {
  type = map(object({ replicas = number, zone = optional(string, "a") }))
  default = {
    beijing  = { replicas = 3 }
    shanghai = { replicas = 2, zone = "b" }
  }
}

locals {
  prefix = "${var.fleet}-${builtin_random.suffix.result}"
}

resource "builtin_random" "suffix" {
  length = 6
}

resource "builtin_data" "region" {
  for_each = var.regions

  input = {
    name     = "${local.prefix}-${each.key}"
    replicas = each.value.replicas
    zone     = "${each.key}-${each.value.zone}"
  }
}

resource "builtin_file" "inventory" {
  path    = "${path.module}/out/inventory.yaml"
  content = yamlencode({ for k, r in builtin_data.region : k => r.output })
}

output "cluster_names" {
  value       = [for r in builtin_data.region : r.output.name]
  description = "Generated cluster names."
}

output "inventory_path" {
  value = builtin_file.inventory.path
}
