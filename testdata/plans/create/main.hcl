variable "password" {
  type      = string
  default   = "hunter2-do-not-print"
  sensitive = true
}

variable "zones" {
  type    = list(string)
  default = ["a", "b"]
}

data "builtin_file" "motd" {
  path = "motd.txt"
}

resource "builtin_data" "zone" {
  count = length(var.zones)
  input = {
    name  = "zone-${var.zones[count.index]}"
    index = count.index
  }
}

resource "builtin_data" "cluster" {
  for_each = { edge = 1, core = 3 }
  input    = each.value
}

resource "builtin_file" "motd" {
  path    = "out/motd.txt"
  content = <<-EOT
    ${trimspace(data.builtin_file.motd.content)}
    zones: ${join(", ", var.zones)}
  EOT
}

resource "builtin_file" "secret" {
  path              = "out/secret.txt"
  sensitive_content = var.password
}

output "zones" {
  value = builtin_data.zone[*].output.name
}
