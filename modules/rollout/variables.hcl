variable "name" {
  type        = string
  description = "The application's name: its Deployment, Service and Canary (the block's label unless set)."
}

variable "fleet" {
  type        = any
  description = "The fleet it runs on (a fleet block: `fleet.prod`)."
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

variable "namespace" {
  type        = string
  default     = "default"
  description = "The namespace of the application on each member."
}

variable "create_namespace" {
  type        = bool
  default     = true
  description = "Create the namespace on each member (false when another block owns it)."
}

variable "image" {
  type        = string
  description = "The container image, e.g. `ghcr.io/acme/checkout:1.4.0`."
}

variable "replicas" {
  type        = number
  default     = 2
  description = "Replicas on each member."
}

variable "member_replicas" {
  type        = map(number)
  default     = {}
  description = "Replicas per member name, overriding `replicas`."
}

variable "port" {
  type        = number
  default     = 8080
  description = "The port the container serves on (and the service port)."
}

variable "env" {
  type        = map(string)
  default     = {}
  description = "Environment variables of the container."
}

variable "resources" {
  type = object({
    cpu    = string
    memory = string
  })
  default     = { cpu = "100m", memory = "128Mi" }
  description = "Requests of the container; memory is also its limit."
}

variable "strategy" {
  type        = string
  default     = "canary"
  description = "`canary` (traffic shifted step by step), `blue_green` (all at once after analysis), `ab` (by HTTP match), or `none` (a plain rolling update): Flagger over Istio for the first three."

  validation {
    condition     = contains(["canary", "blue_green", "ab", "none"], var.strategy)
    error_message = "`strategy` is canary, blue_green, ab or none."
  }
}

variable "analysis" {
  type = object({
    interval    = optional(string, "1m")
    threshold   = optional(number, 5)
    step_weight = optional(number, 10)
    max_weight  = optional(number, 50)
    iterations  = optional(number, 10)
    match       = optional(any, [])
    metrics     = optional(any, null)
    webhooks    = optional(any, [])
  })
  default     = {}
  description = "Flagger's analysis: `interval`, failed-check `threshold`, `step_weight` and `max_weight` (canary), `iterations` (blue_green, ab), `match` (ab), `metrics` (default: request success rate >= 99% and duration <= 500ms), `webhooks`."
}

variable "waves" {
  type = list(object({
    name            = optional(string)
    selector        = optional(map(string))
    members         = optional(list(string))
    max_concurrency = optional(string, "100%")
    soak            = optional(string, "0s")
    approval        = optional(bool, false)
    max_failures    = optional(number, 0)
  }))
  default     = null
  description = "The waves, in order: each selects members by `selector` (labels) and/or `members` (names), or takes the rest when it sets neither; `max_concurrency` (a number, or a percentage of the wave rounded up), `soak` after the wave is healthy, `approval` before it starts, `max_failures` within it. Default: one wave of every member, all at once."
}

variable "max_failures" {
  type        = number
  default     = 0
  description = "Failed members the whole rollout tolerates before `on_failure`."
}

variable "on_failure" {
  type        = string
  default     = "pause"
  description = "What a failure beyond the budget does: `rollback` (every touched member back to its previous revision, last wave first), `pause` (stop; `flotilla rollout resume` continues) or `abort` (stop for good at this revision)."

  validation {
    condition     = contains(["rollback", "pause", "abort"], var.on_failure)
    error_message = "`on_failure` is rollback, pause or abort."
  }
}

variable "progress_deadline" {
  type        = string
  default     = "10m"
  description = "How long one member may take, from its first change to a healthy gate, before it counts as failed."
}

variable "checks" {
  type = list(object({
    name = string
    object = optional(object({
      api_version = optional(string, "v1")
      kind        = string
      name        = string
      namespace   = optional(string)
    }))
    http = optional(object({
      url     = string
      method  = optional(string, "GET")
      headers = optional(map(string), {})
      timeout = optional(string, "10s")
    }))
    field  = string
    equals = optional(any)
    one_of = optional(list(any))
    min    = optional(number)
    max    = optional(number)
    wait   = optional(string, "0s")
  }))
  default     = []
  description = "Extra health checks per member, after its gate: an object read on the member (`object`: `kind`, `name`, `api_version`, `namespace`, default the rollout's) or an HTTP request (`http`: `url`, `method`, `headers`, `timeout`; `{member}` in them is the member's name), whose `field` (a dotted path: of the object, e.g. `data.status`; of the response, `status_code`, `json.status`, `response_body`) must `equals` a value, be `one_of` a list, or be at least `min` / at most `max` (numbers, or strings that hold one); `wait` is how long it may fail before the member counts as failed."

  validation {
    condition     = alltrue([for c in var.checks : (c.object == null) != (c.http == null)])
    error_message = "Each check reads either an `object` on the member or an `http` endpoint: give exactly one of them."
  }
}

variable "on_change" {
  type        = string
  default     = "supersede"
  description = "What a new revision does to an unfinished rollout of another one: `supersede` (start again from wave 1) or `fold` (keep the approvals and soaks of its waves)."

  validation {
    condition     = contains(["supersede", "fold"], var.on_change)
    error_message = "`on_change` is supersede or fold."
  }
}
