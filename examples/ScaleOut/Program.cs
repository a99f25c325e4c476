// Loads the weights PyTorch DDP trained (train_ddp.py, rank 0's save_safetensors) into the generated Fmnist class and
// measures its test accuracy with Infer on the same images PyTorch evaluated; prints both and every disagreement.
// usage: dotnet run --project examples/ScaleOut -- OUT_DIR [--data DIR]   (OUT_DIR holds fmnist_ddp.safetensors and pytorch_eval.json)
using System.Globalization;
using System.Text.Json;
using Dsl.Training;
using Examples.FashionMnist;

if (args.Length is not (1 or 3) || (args.Length == 3 && args[1] != "--data"))
{
    Console.Error.WriteLine("usage: ScaleOut OUT_DIR [--data DIR]   (OUT_DIR: what train_ddp.py wrote)");
    return 2;
}

string outDir = args[0];
string dataDir = args.Length == 3 ? args[2] : MnistFiles.FashionMnistDirectory;
using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "pytorch_eval.json")));
var root = reference.RootElement;
int images = root.GetProperty("images").GetInt32();
var theirs = root.GetProperty("predictions").EnumerateArray().Select(p => p.GetInt32()).ToArray();

var test = MnistFiles.Load(dataDir, train: false).Take(images);
const int Batch = 500;
var model = new Fmnist(maxBatch: Batch);
model.LoadSafetensors(Path.Combine(outDir, "fmnist_ddp.safetensors"));   // the keys PyTorch wrote are the class's own
var logits = new float[Batch * 10];
int correct = 0;
var disagreements = new List<string>();
for (int start = 0; start < test.Count; start += Batch)
{
    int n = Math.Min(Batch, test.Count - start);
    var slice = test.Slice(start, n);
    model.Infer(slice.Samples, logits, n);
    for (int i = 0; i < n; i++)
    {
        var row = logits.AsSpan(i * 10, 10);
        int predicted = 0;
        for (int c = 1; c < 10; c++) if (row[c] > row[predicted]) predicted = c;
        if (predicted == slice.Labels[i]) correct++;
        if (predicted != theirs[start + i]) disagreements.Add($"image {start + i}: Infer says {predicted}, PyTorch {theirs[start + i]}");
    }
}

double ours = (double)correct / test.Count;
double torch = root.GetProperty("accuracy").GetDouble();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"PyTorch DDP ({root.GetProperty("world_size").GetInt32()} processes, {root.GetProperty("steps").GetInt32()} steps each, torch {root.GetProperty("torch").GetString()}) eval accuracy: {torch:0.0000} ({root.GetProperty("correct").GetInt32()}/{images})"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"C# generated Fmnist, Infer on the same weights:        {ours:0.0000} ({correct}/{test.Count})"));
Console.WriteLine($"predictions that differ: {disagreements.Count} of {test.Count}");
foreach (var line in disagreements.Take(10)) Console.WriteLine("  " + line);
return correct == root.GetProperty("correct").GetInt32() && disagreements.Count == 0 ? 0 : 1;
