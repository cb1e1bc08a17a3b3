# frozen_string_literal: true

require "rackup/handler"
require "uma"

module Rackup
  module Handler
    # `rackup -s uma`: runs the app on one Uma worker.
    module Uma
      def self.run(app, **options)
        config = ::Uma::Config.new(
          host: options[:Host] || "0.0.0.0",
          port: Integer(options[:Port] || 9292),
          workers: 1
        )
        server = ::Uma::Server.new(app, config, ::Uma::Listener.open_all(config))
        yield server if block_given?
        server.trap_signals.run
      end

      # The options rackup lists for this handler.
      def self.valid_options
        { "Host=HOST" => "address to listen on (default 0.0.0.0)", "Port=PORT" => "port (default 9292)" }
      end
    end

    register :uma, Uma
  end
end
