# One VCN: a public subnet for the worker nodes (their primary VNICs may hold a public
# IP: an ephemeral one at first, then the reserved one pinip assigns), and a public
# subnet for the Kubernetes API endpoint. Nothing from outside the VCN reaches the nodes
# but path-MTU discovery and what public_inbound lists.
locals {
  vcn_cidr      = "10.0.0.0/16"
  nodes_cidr    = "10.0.10.0/24"
  api_cidr      = "10.0.0.0/28"
  all_ipv4      = "0.0.0.0/0"
  protocol_tcp  = "6"
  protocol_icmp = "1"
}

resource "oci_core_vcn" "main" {
  compartment_id = var.compartment_ocid
  cidr_blocks    = [local.vcn_cidr]
  display_name   = var.cluster_name
  dns_label      = substr(replace(var.cluster_name, "-", ""), 0, 15)
}

resource "oci_core_internet_gateway" "main" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.main.id
  display_name   = "${var.cluster_name}-igw"
  enabled        = true
}

resource "oci_core_route_table" "public" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.main.id
  display_name   = "${var.cluster_name}-public"

  route_rules {
    destination       = local.all_ipv4
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_internet_gateway.main.id
  }
}

resource "oci_core_security_list" "nodes" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.main.id
  display_name   = "${var.cluster_name}-nodes"

  # Egress: the public pool exists to call out (from its reserved public IP).
  egress_security_rules {
    destination = local.all_ipv4
    protocol    = "all"
  }

  # Node to node, pods, and the API endpoint to the kubelets: inside the VCN only.
  ingress_security_rules {
    source   = local.vcn_cidr
    protocol = "all"
  }

  # Path MTU discovery ("fragmentation needed"), as OCI's default security list allows.
  ingress_security_rules {
    source   = local.all_ipv4
    protocol = local.protocol_icmp
    icmp_options {
      type = 3
      code = 4
    }
  }

  # What the public pool must accept from outside: nothing unless listed.
  dynamic "ingress_security_rules" {
    for_each = var.public_inbound
    content {
      source   = ingress_security_rules.value.source
      protocol = local.protocol_tcp
      tcp_options {
        min = ingress_security_rules.value.port
        max = ingress_security_rules.value.port
      }
    }
  }
}

resource "oci_core_security_list" "api" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.main.id
  display_name   = "${var.cluster_name}-api"

  egress_security_rules {
    destination = local.vcn_cidr
    protocol    = "all"
  }

  # OKE's control plane talks to Oracle services through the endpoint subnet.
  egress_security_rules {
    destination = local.all_ipv4
    protocol    = local.protocol_tcp
    tcp_options {
      min = 443
      max = 443
    }
  }

  # The workers' kubelets and the OKE proxy (12250).
  ingress_security_rules {
    source   = local.nodes_cidr
    protocol = local.protocol_tcp
    tcp_options {
      min = 6443
      max = 6443
    }
  }

  ingress_security_rules {
    source   = local.nodes_cidr
    protocol = local.protocol_tcp
    tcp_options {
      min = 12250
      max = 12250
    }
  }

  # terraform and kubectl.
  dynamic "ingress_security_rules" {
    for_each = var.api_authorized_cidrs
    content {
      source   = ingress_security_rules.value
      protocol = local.protocol_tcp
      tcp_options {
        min = 6443
        max = 6443
      }
    }
  }
}

resource "oci_core_subnet" "nodes" {
  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.main.id
  cidr_block                 = local.nodes_cidr
  display_name               = "${var.cluster_name}-nodes"
  dns_label                  = "nodes"
  route_table_id             = oci_core_route_table.public.id
  security_list_ids          = [oci_core_security_list.nodes.id]
  prohibit_public_ip_on_vnic = false
}

resource "oci_core_subnet" "api" {
  compartment_id             = var.compartment_ocid
  vcn_id                     = oci_core_vcn.main.id
  cidr_block                 = local.api_cidr
  display_name               = "${var.cluster_name}-api"
  dns_label                  = "api"
  route_table_id             = oci_core_route_table.public.id
  security_list_ids          = [oci_core_security_list.api.id]
  prohibit_public_ip_on_vnic = false
}

# The API endpoint's own rules (the subnet's security list above allows the same): who
# may reach the Kubernetes API.
resource "oci_core_network_security_group" "api" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.main.id
  display_name   = "${var.cluster_name}-api"
}

resource "oci_core_network_security_group_security_rule" "api_from" {
  # checkov:skip=CKV_OCI_21: stateful on purpose: a stateless rule would need an egress rule back to every authorized CIDR for the replies
  for_each = toset(concat([local.nodes_cidr], var.api_authorized_cidrs))

  network_security_group_id = oci_core_network_security_group.api.id
  direction                 = "INGRESS"
  protocol                  = local.protocol_tcp
  source                    = each.value
  source_type               = "CIDR_BLOCK"
  tcp_options {
    destination_port_range {
      min = 6443
      max = 6443
    }
  }
}

resource "oci_core_network_security_group_security_rule" "api_proxy" {
  # checkov:skip=CKV_OCI_21: stateful on purpose: the workers' connections to the OKE proxy need their replies tracked
  network_security_group_id = oci_core_network_security_group.api.id
  direction                 = "INGRESS"
  protocol                  = local.protocol_tcp
  source                    = local.nodes_cidr
  source_type               = "CIDR_BLOCK"
  tcp_options {
    destination_port_range {
      min = 12250
      max = 12250
    }
  }
}

resource "oci_core_network_security_group_security_rule" "api_to_nodes" {
  # checkov:skip=CKV2_OCI_2: egress from the API endpoint to the cluster's own VCN (kubelets, webhooks, pods); it admits nothing inbound, RDP included
  network_security_group_id = oci_core_network_security_group.api.id
  direction                 = "EGRESS"
  protocol                  = "all"
  destination               = local.vcn_cidr
  destination_type          = "CIDR_BLOCK"
}

resource "oci_core_network_security_group_security_rule" "api_to_oracle" {
  network_security_group_id = oci_core_network_security_group.api.id
  direction                 = "EGRESS"
  protocol                  = local.protocol_tcp
  destination               = local.all_ipv4
  destination_type          = "CIDR_BLOCK"
  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}
