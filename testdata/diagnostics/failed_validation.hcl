# flotilla: plan -var fleet=Prod_1
variable "fleet" {
  type = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*$", var.fleet))
    error_message = "fleet must be lower-case letters, digits and dashes."
  }
}

resource "builtin_data" "a" {
  input = var.fleet
}
