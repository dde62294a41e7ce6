variable "name" {
  type        = string
  description = "The addon: a known platform (istio, volcano, kubeedge, kyverno, flagger, prometheus) or any name with `chart` set (the block's label unless set)."
}

variable "fleet" {
  type        = any
  description = "The fleet whose members get the addon (a fleet block: `fleet.prod`)."
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

variable "chart" {
  type = object({
    repository = string
    name       = string
    version    = string
  })
  default     = null
  description = "The Helm chart: required for an addon flotilla does not know, optional otherwise (overrides the known chart)."
}

variable "version" {
  type        = string
  default     = null
  description = "The chart version (default: the known chart's tested version)."
}

variable "namespace" {
  type        = string
  default     = null
  description = "Where the release installs (default: the known chart's usual namespace, else the addon's name)."
}

variable "values" {
  type        = any
  default     = {}
  description = "Helm values for every member."
}

variable "member_values" {
  type        = any
  default     = {}
  description = "Helm values per member name, merged over `values` (per-cluster variation from expressions)."
}

variable "interval" {
  type        = string
  default     = "10m"
  description = "How often Flux reconciles the release."
}
