# frozen_string_literal: true

module Uma
  # The settings of a server, with their defaults.
  class Config
    DEFAULTS = {
      binds: [],                 # ["127.0.0.1:9292", "[::]:9292", "unix:/path"]
      port: 9292,
      host: "0.0.0.0",
      workers: 1,
      environment: nil,
      rackup: "config.ru",
      head_timeout: 10.0,        # seconds to receive a whole request head
      idle_timeout: 20.0,        # seconds a keep-alive connection may stay idle
      body_timeout: 30.0,        # seconds between two pieces of a body
      shutdown_timeout: 30.0,    # seconds a graceful stop waits for requests
      max_request_line: 8192,
      max_head: 65536,
      max_headers: 100,
      max_body: nil,             # bytes; nil: no limit
      backlog: 1024
    }.freeze

    attr_accessor(*DEFAULTS.keys)

    # The DEFAULTS with +settings+ (any of their keys) over them.
    #
    # @example
    #   config = Uma::Config.new(port: 8080, workers: 2)
    #   config.idle_timeout  # => 20.0
    def initialize(**settings)
      DEFAULTS.merge(settings).each { |k, v| public_send("#{k}=", v) }
    end

    # The addresses to listen on: the binds given, else host:port.
    #
    # @example
    #   Uma::Config.new(port: 8080).addresses                  # => ["0.0.0.0:8080"]
    #   Uma::Config.new(binds: ["unix:/tmp/u.sock"]).addresses  # => ["unix:/tmp/u.sock"]
    def addresses
      binds.empty? ? [format_address(host, port)] : binds
    end

    # HOST:PORT, with an IPv6 host in brackets.
    #
    # @example
    #   config.format_address("::1", 80)        # => "[::1]:80"
    #   config.format_address("127.0.0.1", 80)  # => "127.0.0.1:80"
    def format_address(host, port)
      host.include?(":") ? "[#{host}]:#{port}" : "#{host}:#{port}"
    end
  end
end
