# frozen_string_literal: true

# The TechEmpower app for any Rack server. TFB_SERVER names the server in
# the Server header; every server but Uma gets its Date header from the app.
require_relative "app"

server = ENV.fetch("TFB_SERVER", "uma")
run TFB::App.new(server: server, date: server != "uma")
