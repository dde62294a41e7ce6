# This file is maintained by "flotilla init"; commit it, so every run
# uses the same module versions. Do not edit it by hand.

lock_version = 1

module "module.edge" {
  source     = "git::file:///srv/modules.git//edge"
  constraint = "~> 1.0"
  version    = "1.1.0"
  revision   = "0123456789abcdef0123456789abcdef01234567"
  hash       = "blake3:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
}

module "module.mesh" {
  source     = "oci://registry.example.com/platform/mesh"
  constraint = ">= 2.0, < 3"
  version    = "2.4.1"
  revision   = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
  hash       = "blake3:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
}
