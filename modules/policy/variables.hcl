variable "name" {
  type        = string
  description = "The Kyverno ClusterPolicy's name (the block's label unless set)."
}

variable "fleet" {
  type        = any
  description = "The fleet the policy applies to (a fleet block: `fleet.prod`)."
}

variable "preset" {
  type        = string
  default     = null
  description = "A built-in policy: `require-requests-limits`, `pod-security-baseline` or `pod-security-restricted`."

  validation {
    condition     = var.preset == null || contains(["require-requests-limits", "pod-security-baseline", "pod-security-restricted"], var.preset)
    error_message = "Presets: require-requests-limits, pod-security-baseline, pod-security-restricted (or give `rules`)."
  }
}

variable "rules" {
  type        = any
  default     = null
  description = "The policy's rules in Kyverno's own field names, instead of a preset."
}

variable "mode" {
  type        = string
  default     = "audit"
  description = "`audit` (report violations) or `enforce` (refuse them)."

  validation {
    condition     = contains(["audit", "enforce"], var.mode)
    error_message = "`mode` is \"audit\" or \"enforce\"."
  }
}

variable "members" {
  type        = list(string)
  default     = null
  description = "Only these members (by name); default: every member the selector picks."
}

variable "selector" {
  type        = map(string)
  default     = {}
  description = "Only the members whose labels have every one of these."
}

variable "background" {
  type        = bool
  default     = true
  description = "Also check existing resources, not only new requests."
}
