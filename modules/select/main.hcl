# Which members of a fleet a block applies to: the ones named (default: all), of those the
# ones whose labels match the selector. Used by addon, policy and rollout. Names and labels
# are not sensitive, so the result can key `for_each`.

variable "fleet" {
  type        = any
  description = "The fleet (a fleet block)."
}

variable "members" {
  type        = list(string)
  default     = null
  description = "Only these members (by name)."
}

variable "selector" {
  type        = map(string)
  default     = {}
  description = "Only the members whose labels have every one of these."
}

variable "what" {
  type        = string
  description = "The selecting block, for messages (`addon \"istio\"`)."
}

locals {
  labels  = var.fleet.member_labels
  wanted  = var.members != null ? var.members : keys(local.labels)
  unknown = setsubtract(local.wanted, keys(local.labels))
}

output "names" {
  value = [
    for name, labels in local.labels : name
    if contains(local.wanted, name) && alltrue([for k, v in var.selector : lookup(labels, k, null) == v])
  ]
  description = "The selected members' names."

  # Members named that the fleet does not have are an error at plan time.
  precondition {
    condition     = length(local.unknown) == 0
    error_message = "${var.what} names members fleet ${var.fleet.name} does not have: ${join(", ", sort(local.unknown))} (its members: ${join(", ", sort(keys(local.labels)))})."
  }
}
