# The pool: reserved public IPs tagged for pinip's FILTER (freeformTags.kubeip=reserved,
# KubeIP's syntax, plus this cluster's pinip-pool tag, so two clusters in one compartment
# never share a pool by accident). They stay reserved when nodes come and go; that is
# the point. pinip assigns them (privateIpId) and writes its ownership record into the
# free-form tags (pinip-cluster, pinip-node, pinip-instance, pinip-private-ip), which
# terraform must leave alone.
resource "oci_core_public_ip" "pool" {
  count          = var.pool_size
  compartment_id = var.compartment_ocid
  lifetime       = "RESERVED"
  display_name   = "${var.cluster_name}-pinip-${count.index}"

  freeform_tags = {
    kubeip       = "reserved"
    "pinip-pool" = var.cluster_name
  }

  lifecycle {
    ignore_changes = [private_ip_id, freeform_tags]
  }
}
