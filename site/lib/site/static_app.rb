# frozen_string_literal: true

module Site
  # A Rack app serving the built site's files: GET and HEAD, a directory's
  # index.html, 404 for anything else found nowhere under the root.
  class StaticApp
    TYPES = {
      ".html" => "text/html; charset=utf-8", ".css" => "text/css; charset=utf-8",
      ".js" => "text/javascript; charset=utf-8", ".svg" => "image/svg+xml",
      ".png" => "image/png", ".ico" => "image/x-icon", ".json" => "application/json", ".txt" => "text/plain; charset=utf-8"
    }.freeze

    def initialize(root)
      @root = File.realpath(root)
    end

    def call(env)
      return [405, { "allow" => "GET, HEAD", "content-type" => "text/plain" }, ["method not allowed\n"]] unless %w[GET HEAD].include?(env["REQUEST_METHOD"])

      path = file_for(env["PATH_INFO"])
      return [404, { "content-type" => "text/plain" }, ["not found\n"]] unless path

      headers = { "content-type" => TYPES.fetch(File.extname(path), "application/octet-stream"),
                  "content-length" => File.size(path).to_s }
      [200, headers, env["REQUEST_METHOD"] == "HEAD" ? [] : [File.binread(path)]]
    end

    private

    # The file under the root the path names (a directory: its index.html);
    # nil when there is none or the path leaves the root.
    def file_for(path_info)
      path = File.expand_path(".#{path_info.to_s.split('?').first}", @root)
      path = File.join(path, "index.html") if File.directory?(path)
      return nil unless File.file?(path)

      real = File.realpath(path)
      real.start_with?("#{@root}/") ? real : nil
    end
  end
end
